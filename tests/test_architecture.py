"""The architecture of the repository, read from the source with :mod:`ast` (nothing is
imported): the rules of the README's layout, checked on every module.

(a) No module, tests included, imports a private name (``_x``) or a private module of
    another top-level package (a package's own private modules are its business); a test
    imports from tests/ only the public names of harness modules, never another ``test_*``
    module.
(b) A package's command line (``<pkg>/cli.py``, ``<pkg>/__main__.py`` and what they import
    from their own package) imports no package above it: ``python -m PKG`` reaches only PKG
    and the layers below; the ``jungle`` console script (jungle_cli/) is the one front end
    that spans the packages, and it only dispatches (it imports none of them at module level).
(c) The libraries point one way, netsim <- broadcast <- agreement <- learning (proofs reads
    agreement and what is below it): no import upward, at any depth of a function; and no
    module-level ``import torch`` in netsim, broadcast or agreement (a lazy import inside a
    function is fine).
(d) No function outside tests/ is longer than 80 lines.

Each failure lists every offence as ``file:line: what``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("netsim", "broadcast", "agreement", "learning", "proofs")
# what each package may import of the others (itself always)
ALLOWED: dict[str, set[str]] = {
    "netsim": set(),
    "broadcast": {"netsim"},
    "agreement": {"netsim", "broadcast"},
    "learning": {"netsim", "broadcast", "agreement"},
    "proofs": {"netsim", "broadcast", "agreement"},
}
NO_TORCH = ("netsim", "broadcast", "agreement")
TOP_LEVELS = (*PACKAGES, "jungle_cli", "benchmarks", "examples", "tests")
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Import:
    """One imported object: ``module`` (absolute, dotted), ``name`` (``None`` for
    ``import module``), where it is, and whether it is at module level."""

    path: Path
    line: int
    module: str
    name: str | None
    top_level: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def package(self) -> str:
        return self.module.split(".")[0]


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(*tops: str) -> list[Path]:
    out: list[Path] = []
    for top in tops:
        base = ROOT / top
        if base.is_dir():
            out += sorted(p for p in base.rglob("*.py") if "egg-info" not in str(p))
    return out


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imports(path: Path) -> Iterator[Import]:
    """Every import of ``path``, relative ones made absolute; ``top_level`` unless it sits
    inside a function (a lazy import)."""
    tree = _parse(path)
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    in_function = {id(inner) for node in ast.walk(tree)
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                   for inner in ast.walk(node) if inner is not node}
    for node in ast.walk(tree):
        top = id(node) not in in_function  # run at import (also under if/try at top level)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, None, top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            for alias in node.names:
                yield Import(path, node.lineno, mod, alias.name, top)


def _report(offences: list[str], rule: str) -> str:
    return f"{rule}: {len(offences)} offence(s)\n" + "\n".join(offences)


# (a) private names ---------------------------------------------------------------------

def private_import_offences() -> list[str]:
    out: list[str] = []
    for path in python_files(*TOP_LEVELS):
        own = module_name(path).split(".")[0]
        for imp in imports(path):
            if imp.package not in TOP_LEVELS:
                continue  # the standard library and third parties
            parts = imp.module.split(".")
            private = [p for p in parts if _is_private(p)]
            if imp.name is not None and _is_private(imp.name) and imp.name not in private:
                private.append(imp.name)
            what = imp.module + (f".{imp.name}" if imp.name else "")
            if imp.package != own:
                if private:
                    out.append(f"{imp.where}: imports {what}: the private "
                               f"{', '.join(private)} of another package (make it public)")
            elif own == "tests":  # harness modules only (tests/<pkg>/harness.py, ...)
                test_module = any(p.startswith("test_") for p in parts) or (
                    imp.name or "").startswith("test_")
                if test_module or (imp.name is not None and _is_private(imp.name)):
                    out.append(f"{imp.where}: imports {what}: a test imports only public "
                               "names of the test harness modules, not another test module's")
    return out


def private_attribute_offences() -> list[str]:
    """``import agreement.rules`` then ``agreement.rules._backend``: the same offence."""
    out: list[str] = []
    for path in python_files(*TOP_LEVELS):
        own = module_name(path).split(".")[0]
        tree = _parse(path)
        bound = {a.asname or a.name.split(".")[0]: a.name
                 for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                target = bound[base.id].split(".")[0]
                if target in TOP_LEVELS and target != own:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses the private "
                               f"{node.attr} of {target} (another package)")
    return out


def test_no_private_name_of_another_package_is_imported() -> None:
    offences = private_import_offences() + private_attribute_offences()
    assert not offences, _report(offences, "(a) private imports")


# (b) command lines import only downward --------------------------------------------------

def cli_closure(package: str) -> set[Path]:
    """``package``'s cli.py and __main__.py, and the modules of ``package`` they import,
    transitively (a module ``package.x`` or a name ``x`` of ``package`` that is a module)."""
    todo = [p for p in (ROOT / package / "cli.py", ROOT / package / "__main__.py")
            if p.exists()]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for imp in imports(path):
            if imp.package != package:
                continue
            base = ROOT.joinpath(*imp.module.split("."))
            for cand in (base.with_suffix(".py"), base / "__init__.py",
                         base / f"{imp.name}.py", base / str(imp.name) / "__init__.py"):
                if cand.exists():
                    todo.append(cand)
    return seen


def test_command_lines_import_only_downward() -> None:
    offences: list[str] = []
    for package in PACKAGES:
        for path in sorted(cli_closure(package)):
            for imp in imports(path):
                if imp.package in PACKAGES and imp.package != package \
                        and imp.package not in ALLOWED[package]:
                    offences.append(f"{imp.where}: the command line of {package} imports "
                                    f"{imp.module} (a package above it; dispatch from "
                                    "jungle_cli instead)")
    for path in python_files("jungle_cli"):
        for imp in imports(path):
            if imp.package in PACKAGES and imp.top_level:
                offences.append(f"{imp.where}: jungle_cli imports {imp.module} at module "
                                "level (the console script only dispatches)")
    assert not offences, _report(offences, "(b) command lines")


# (c) library dependency direction --------------------------------------------------------

def test_libraries_depend_one_way_and_not_on_torch_at_import() -> None:
    offences: list[str] = []
    for package in PACKAGES:
        for path in python_files(package):
            for imp in imports(path):
                if imp.package in PACKAGES and imp.package != package \
                        and imp.package not in ALLOWED[package]:
                    offences.append(f"{imp.where}: {package} imports {imp.module} "
                                    f"(allowed: {', '.join(sorted(ALLOWED[package])) or 'none'})")
                if package in NO_TORCH and imp.package == "torch" and imp.top_level:
                    offences.append(f"{imp.where}: module-level import of torch in {package} "
                                    "(import it inside the function that needs it)")
    assert not offences, _report(offences, "(c) dependency direction")


# (d) short functions ---------------------------------------------------------------------

def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out: list[str] = []
    for path in python_files(*(t for t in TOP_LEVELS if t != "tests")):
        for node in ast.walk(_parse(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} is "
                               f"{length} lines (at most {limit})")
    return out


def test_no_function_outside_tests_is_longer_than_80_lines() -> None:
    offences = long_functions()
    assert not offences, _report(offences, "(d) function length")


# the checks themselves find what they should ----------------------------------------------

def test_the_checks_find_each_kind_of_offence(tmp_path, monkeypatch) -> None:
    """A small tree with one offence of each kind: every check names its file:line."""
    import sys

    for pkg in ("netsim", "agreement", "tests"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "netsim" / "cli.py").write_text(
        "def main():\n    from agreement.run import _finish\n    return _finish\n")
    (tmp_path / "agreement" / "engine.py").write_text(
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n\n\n"
        "def long():\n" + "    x = 1\n" * 80)
    (tmp_path / "tests" / "test_b.py").write_text("from .test_a import helper\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert private_import_offences() == [
        "netsim/cli.py:2: imports agreement.run._finish: the private _finish of another "
        "package (make it public)",
        "tests/test_b.py:1: imports tests.test_a.helper: a test imports only public names of "
        "the test harness modules, not another test module's"]
    upward = [f"{i.where}: {i.module}" for p in cli_closure("netsim") for i in imports(p)]
    assert upward == ["netsim/cli.py:2: agreement.run"]
    torch_top = [i.where for p in python_files("agreement") for i in imports(p)
                 if i.package == "torch" and i.top_level]
    assert torch_top == ["agreement/engine.py:2"]
    assert long_functions() == ["agreement/engine.py:7: long is 81 lines (at most 80)"]
