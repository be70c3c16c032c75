"""mkdocs hooks: the docstrings' reST roles as links of the API reference.

The docstrings cite objects with Sphinx roles (``:class:`Network```, ``:func:`~a.b.c```),
which Markdown renders as the role's text before a code span. After the build, every
``:role:<code>target</code>`` of every page becomes the code span alone (``~`` shortens it to
the last component, as in Sphinx), linked to the API page whose heading has that target's id
(mkdocstrings gives each documented object the id of its dotted path). A target is resolved as
written, then relative to the page's own modules, then by a unique suffix; a target that
resolves nowhere, or to two objects, stays plain code.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>(~?)([^<]+)</code>")
ID = re.compile(r'id="([A-Za-z_][\w.]*)"')


def _index(site: Path) -> dict[str, Path]:
    """Dotted id -> the HTML file of the API reference that defines it."""
    where: dict[str, Path] = {}
    for page in sorted((site / "api").glob("*.html")):
        for ident in ID.findall(page.read_text(encoding="utf-8")):
            where.setdefault(ident, page)
    return where


def _resolve(target: str, scopes: list[str], where: dict[str, Path]) -> str | None:
    target = target.strip().lstrip(".")
    for scope in ["", *scopes]:
        name = f"{scope}.{target}" if scope else target
        if name in where:
            return name
    # else a unique suffix match (``Strategy`` -> ``netsim.sim.adversary.Strategy``); an
    # ambiguous one (two ``Network`` classes) links nowhere rather than to the wrong one
    found = [ident for ident in where if ident.endswith("." + target)]
    return found[0] if len(found) == 1 else None


def on_post_build(config: Any, **_: Any) -> None:
    site = Path(config["site_dir"])
    where = _index(site)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if ":<code>" not in text:
            continue
        scopes = sorted({i.rsplit(".", 1)[0] for i in ID.findall(text) if "." in i}, key=len,
                        reverse=True)

        def link(m: re.Match[str], page: Path = page, scopes: list[str] = scopes) -> str:
            short, target = m.group(1), html.unescape(m.group(2))
            shown = target.rsplit(".", 1)[-1] if short else target
            code = f"<code>{html.escape(shown)}</code>"
            ident = _resolve(target, scopes, where)
            if ident is None:
                return code
            href = os.path.relpath(where[ident], page.parent).replace(os.sep, "/")
            return f'<a href="{href}#{ident}">{code}</a>'

        page.write_text(ROLE.sub(link, text), encoding="utf-8")
