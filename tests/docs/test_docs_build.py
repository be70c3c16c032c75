"""The documentation site builds offline and its links hold (docs/index.md, "Building").

- ``mkdocs build --strict`` (mkdocs.yml: built-in theme, mkdocstrings reading the installed
  packages; nothing is fetched) succeeds: strict turns every warning into a failure, so a
  page missing from the nav, a broken link or anchor between pages, or a ``:::`` directive
  naming an object that does not exist fails the build;
- every package of the API reference has a page that rendered its docstrings (a known
  sentence of each, not just the page's title);
- every relative link of README.md and docs/**/*.md points to a file of the repository
  (never outside it: no link into a folder beside the checkout).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# One sentence of each package's docstrings (the package's or one of its modules'), as it
# appears in the rendered HTML: the page rendered the docstrings, not only its heading.
API_PAGES = {
    "netsim": "The sans-IO protocol interface",
    "netsim.sim": "The deterministic adversarial network simulator",
    "netsim.net": "The real network: the same sans-IO protocols between processes and hosts.",
    "broadcast": "Bracha reliable broadcast with digest echoes",
    "agreement": "The round-level engine",
    "agreement.rules": "Robust rules of averaging agreement: a view of",
    "agreement.constants": "Per-coordinate, per-round contraction of the honest range under RB-TM",
    "agreement.claims": "The claims table: every proven bound of the protocols, once",
    "agreement.campaigns": "A campaign is a",
    "learning": "LEARN (docs/theory.md §6) and the baselines",
    "proofs": "worst-case search of one round under witness views",
}

# Modules that only re-export another documented module.
RE_EXPORTS = {"proofs.constants": "agreement.constants"}

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _need_mkdocs() -> None:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip('mkdocs and mkdocstrings are not installed: pip install -e ".[docs]"')


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _need_mkdocs()
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_the_site_builds_strictly_with_every_nav_page(site: Path) -> None:
    for page in ("index", "theory", "architecture", "guides/simulation", "guides/verifying",
                 "guides/training", "guides/adversary", "guides/optimizer"):
        assert (site / f"{page}.html").is_file(), f"{page}.md did not render"


@pytest.mark.parametrize("package", sorted(API_PAGES))
def test_every_package_has_a_rendered_api_page(site: Path, package: str) -> None:
    page = site / "api" / f"{package}.html"
    assert page.is_file(), f"no API page for {package}: add docs/api/{package}.md to mkdocs.yml"
    html = page.read_text(encoding="utf-8")
    assert f'id="{package}"' in html, f"docs/api/{package}.md has no ::: {package} directive"
    assert API_PAGES[package] in html, (
        f"the API page of {package} does not show its docstrings "
        f"(looked for {API_PAGES[package]!r})")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """The relative link targets of a Markdown text (code blocks and inline code skipped)."""
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target)
    return out


def test_the_link_extractor_finds_links_and_skips_code() -> None:
    text = ("[a](docs/x.md) [b](https://e.org) [c](#top) `[d](no.md)` ![i](img.png)\n"
            "```text\n[e](no.md)\n```\n[f](../g.md#sec \"title\")\n")
    assert relative_links(text) == ["docs/x.md", "../g.md#sec"]


@pytest.mark.parametrize("md", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_into_the_repository(md: Path) -> None:
    for target in relative_links(md.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0]
        if not path:
            continue
        dest = (md.parent / path).resolve()
        where = f"{md.relative_to(ROOT)} links to {target!r}"
        assert dest.is_relative_to(ROOT), f"{where}: outside the repository"
        assert dest.exists(), f"{where}: no such file in the repository"


def _public_modules() -> list[str]:
    """Every public module of the libraries (``pkg/x.py`` and sub-packages; private ``_x``,
    ``__main__`` and the command lines ``cli*.py`` are not API)."""
    out = []
    for pkg in ("netsim", "broadcast", "agreement", "learning", "proofs"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(p.startswith("_") for p in parts) or parts[-1].startswith("cli"):
                continue
            out.append(".".join(parts))
    return out


def test_every_public_module_is_in_the_api_reference() -> None:
    documented: set[str] = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.M))
    missing = [m for m in _public_modules() if m not in documented and m not in RE_EXPORTS]
    assert not missing, ("public modules without a ::: directive in docs/api/*.md: "
                         + ", ".join(missing))
