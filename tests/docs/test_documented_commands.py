"""Every fenced ``bash`` and ``python`` block of README.md, BENCHMARKS.md and docs/**/*.md
runs as written, from a fresh copy of the repository, and prints what its ``expect``
directives say.

One test per Markdown file (id: its path relative to the repository root):

- ``test_blocks_are_well_formed``: every directive is known and attached to a runnable block,
  every fence has a language, and no block hides under a language that does not run (``sh``,
  ``console``, ``py``: see :mod:`tests.docs.blocks`). So every command is either run or
  explicitly not a command (``text``, ``console-output``, ...).
- ``test_documented_commands``: the file's blocks without ``slow``, in order, in one copy of
  the checkout's tracked files as they are on disk (``git ls-files``, copied from the working
  tree: uncommitted changes included, untracked files not, as in a fresh clone); cwd = the
  copy's root, ``PYTHONPATH`` = the copy's root (``python -m agreement`` imports the copy, not
  the installed editable checkout), ``PATH`` led by this interpreter's folder (``python``,
  ``pip``, ``jungle``, ``torchrun`` are this environment's), ``MPLBACKEND=Agg``. Bash blocks
  run under ``bash -euo pipefail`` (300 s each); python blocks share one namespace per file,
  in one subprocess per file. Every ``expect TEXT`` must be a substring of its block's stdout.
  A fast block must not need a slow block's side effects: it runs without them here.
- ``test_documented_commands_slow`` (``-m slow``), for files with ``slow`` blocks: ALL the
  file's blocks, in order (30 min each). Every block is thus run by one of the two suites.

Special commands, rewritten before a bash block runs (everything else runs verbatim; a
command line is split at ``&&`` and each part judged alone):

- ``pip install ARGS`` (or ``python -m pip install``) does not install into the running
  environment (an editable install would re-point the package at the scratch copy). Instead
  every requirement it names must already be installed and satisfy its version specifier
  (:func:`importlib.metadata.version` against ``packaging``'s specifier): a name such as
  ``torch==2.13.0``; ``-e ".[learn]"`` or ``.``: the project itself plus the requirements of
  each extra in pyproject.toml (``jungle[...]`` expanded); ``-r FILE``: its lines. The part
  becomes ``true`` and the rest of the line runs.
- ``python -m pytest -q`` (the default suite, no marker, path or ``-k``): not run here (that
  would run the suite inside itself); it must appear verbatim in ``.ci/run``, which CI runs,
  and the README's test line must be one of ``.ci/run``'s lines. The part becomes ``true``.
- Any other pytest command (``-m slow``, ``-m cuda``, paths, ``-k``): run with
  ``--collect-only -q`` appended: it proves that the command selects tests (pytest exits 5
  when nothing is selected) without running them, and cannot recurse into this test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from tests.docs.blocks import Block, parse, parse_file, plan_step

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "blocks.py"
BLOCK_TIMEOUT = 300.0
SLOW_BLOCK_TIMEOUT = 1800.0
NESTED = "JUNGLE_DOC_TEST"  # set in the blocks' environment: no doc test runs inside one
TAIL = 4000


def doc_files() -> list[str]:
    """README.md, BENCHMARKS.md and every docs/**/*.md, relative to the repository root."""
    found = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p.relative_to(ROOT).as_posix() for p in found if p.is_file()]


DOCS = doc_files()


def blocks_of(doc: str) -> list[Block]:
    return parse_file(ROOT / doc, ROOT)[0]


SLOW_DOCS = [d for d in DOCS if any(b.slow and b.runnable for b in blocks_of(d))]


# ----------------------------------------------------------------------- special commands


class DocCommandError(AssertionError):
    """A documented command that cannot hold as written (a requirement not installed, a test
    command that is not CI's)."""


def _project_requirements(extras: list[str], seen: set[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name, optional = project["name"], project.get("optional-dependencies", {})
    out: list[str] = []
    for extra in extras:
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise DocCommandError(f"pip install names the extra [{extra}], which pyproject.toml "
                                  f"does not define (defined: {', '.join(optional)})")
        for spec in optional[extra]:
            req = Requirement(spec)
            if req.name == name:
                out += _project_requirements(sorted(req.extras), seen)
            else:
                out.append(spec)
    return out


def _local_target(arg: str) -> list[str] | None:
    """The requirements ``pip install ARG`` stands for when ARG is this checkout
    (``.``, ``.[learn]``, ``./``), else ``None``."""
    m = re.fullmatch(r"(\.|\./|\.\./\S*|/\S*?)(?:\[(?P<extras>[^\]]*)\])?", arg)
    if m is None:
        return None
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    extras = [e.strip() for e in (m["extras"] or "").split(",") if e.strip()]
    return [name, *_project_requirements(extras, set())]


def requirement_problem(spec: str) -> str | None:
    """Why the requirement ``spec`` is not met by the running environment (``None``: met)."""
    req = Requirement(spec)
    if req.marker is not None and not req.marker.evaluate():
        return None
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return f"{spec}: {req.name} is not installed"
    try:
        ok = req.specifier.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        ok = not req.specifier
    return None if ok else f"{spec}: {req.name} {installed} is installed"


VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c",
                 "--constraint", "-t", "--target", "--prefix", "--root", "--platform",
                 "--python-version", "--implementation", "--abi", "--src", "--config-settings",
                 "-C", "--progress-bar", "--upgrade-strategy", "--log", "--cache-dir"}


def pip_requirements(args: list[str]) -> list[str]:
    """The requirements named by the arguments of ``pip install``."""
    reqs: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("-e", "--editable"):
            arg = next(it, "")
        elif arg in ("-r", "--requirement"):
            lines = (ROOT / next(it, "")).read_text().splitlines()
            reqs += [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]
            continue
        elif arg in VALUE_OPTIONS:
            next(it, None)
            continue
        elif arg.startswith("-"):
            continue
        local = _local_target(arg)
        reqs += local if local is not None else [arg]
    return reqs


def check_pip_install(args: list[str]) -> None:
    """Raise :class:`DocCommandError` unless every requirement of ``pip install ARGS`` is met."""
    problems = [p for r in pip_requirements(args) if (p := requirement_problem(r))]
    if problems:
        raise DocCommandError("`pip install " + shlex.join(args) + "` is not satisfied by the "
                              "test environment: " + "; ".join(problems))


def ci_lines() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]


def _rewrite_part(part: str, line: str) -> str:
    try:
        tokens = shlex.split(part, comments=True)
    except ValueError:
        return part
    words = tokens[2:] if tokens[:2] in (["python", "-m"], ["python3", "-m"]) else tokens
    if words[:2] == ["pip", "install"]:
        check_pip_install(words[2:])
        return " true"
    if words[:1] == ["pytest"]:
        args = words[1:]
        selective = any(a in ("-m", "-k") or not a.startswith("-") for a in args)
        if not selective:
            if not any(part.strip() in ci for ci in ci_lines()):
                raise DocCommandError(f"the test command {part.strip()!r} (in {line.strip()!r})"
                                      " is not what .ci/run runs")
            return " true"
        return " " + shlex.join([*tokens, "--collect-only", "-q"]) + " "
    return part


def rewrite_bash(code: str) -> str:
    """``code`` with its special commands rewritten (see the module docstring)."""
    logical, buf = [], ""
    for raw in code.splitlines():
        buf += raw
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        logical.append(buf)
        buf = ""
    if buf:
        logical.append(buf)
    out = []
    for line in logical:
        if line.lstrip().startswith("#") or not re.search(r"\b(pip|pytest)\b", line):
            out.append(line)
            continue
        out.append("&&".join(_rewrite_part(p, line) for p in re.split(r"&&", line)))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------- running


def copy_checkout(dest: Path) -> None:
    """Copy the tracked files of the checkout (as they are on disk) into ``dest``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                                capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"the documented-commands test copies the tracked files of a git checkout "
                    f"(git ls-files failed: {exc}); run it from a clone")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)


def block_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(copy), "MPLBACKEND": "Agg", NESTED: "1",
                "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                         env.get("PATH", "")])})
    return env


def _tail(text: str) -> str:
    return text if len(text) <= TAIL else "[...]\n" + text[-TAIL:]


def _report(block: Block, result: dict, why: str, skipped_slow: list[Block]) -> str:
    msg = [f"{block.label}: {why}", "--- block ---", block.code.rstrip()]
    if result.get("stdout"):
        msg += ["--- stdout ---", _tail(result["stdout"]).rstrip()]
    if result.get("stderr"):
        msg += ["--- stderr ---", _tail(result["stderr"]).rstrip()]
    before = [b for b in skipped_slow if b.index < block.index]
    if before:
        msg.append("note: the slow block(s) " + ", ".join(b.label for b in before) +
                   " did not run in this (default) run; a fast block must not need them")
    return "\n".join(msg)


def run_blocks(blocks: list[Block], tmp_path: Path, skipped_slow: list[Block]) -> None:
    """Run ``blocks`` in order in a fresh copy of the checkout and fail on the first block
    that fails and on every ``expect`` not met."""
    copy = tmp_path / "checkout"
    copy_checkout(copy)
    plan = [plan_step(b, rewrite_bash(b.code) if b.lang == "bash" else b.code,
                      SLOW_BLOCK_TIMEOUT if b.slow else BLOCK_TIMEOUT) for b in blocks]
    plan_path, results_path = tmp_path / "plan.json", tmp_path / "results.json"
    plan_path.write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, str(RUNNER), str(plan_path), str(results_path)],
                          cwd=copy, env=block_env(copy), capture_output=True, text=True,
                          timeout=sum(s["timeout"] for s in plan) + 120)
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    failures = []
    for block, res in zip(blocks, results, strict=False):
        if not res["ok"]:
            failures.append(_report(block, res, f"failed ({res['error'].strip()})",
                                    skipped_slow))
        missing = [e for e in block.expects if e not in res["stdout"]]
        if missing:
            failures.append(_report(block, res, "stdout lacks the expected " +
                                    ", ".join(repr(e) for e in missing), skipped_slow))
    if len(results) < len(blocks) and not any(not r["ok"] for r in results):
        failures.append(f"the runner stopped after {len(results)} of {len(blocks)} blocks "
                        f"(exit {proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def _not_nested() -> None:
    if os.environ.get(NESTED):
        pytest.skip("inside a documented block: the documentation tests do not run themselves")


@pytest.mark.parametrize("doc", DOCS)
def test_blocks_are_well_formed(doc: str) -> None:
    _, problems = parse_file(ROOT / doc, ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_documented_commands(doc: str, tmp_path: Path) -> None:
    _not_nested()
    blocks = [b for b in blocks_of(doc) if b.runnable]
    fast = [b for b in blocks if not b.slow]
    if fast:
        run_blocks(fast, tmp_path, [b for b in blocks if b.slow])


@pytest.mark.slow
@pytest.mark.parametrize("doc", SLOW_DOCS)
def test_documented_commands_slow(doc: str, tmp_path: Path) -> None:
    _not_nested()
    run_blocks([b for b in blocks_of(doc) if b.runnable], tmp_path, [])


def test_every_runnable_block_runs_in_the_default_or_the_slow_suite() -> None:
    unrun = [b.label for doc in DOCS for b in blocks_of(doc)
             if b.runnable and b.slow and doc not in SLOW_DOCS]
    assert not unrun, unrun
    assert all(any(b.slow for b in blocks_of(doc)) for doc in SLOW_DOCS)


def test_readme_starts_with_the_setup_and_run_commands_and_ci_runs_its_test_line() -> None:
    blocks = blocks_of("README.md")
    first = blocks[0]
    text = (ROOT / "README.md").read_text().splitlines()
    assert first.lang == "bash" and all(not ln.strip() or ln.startswith(("#", "<!--"))
                                        for ln in text[: first.line - 1]), \
        "README.md must open with its setup-and-run block"
    commands = [ln.strip() for ln in first.code.splitlines() if ln.strip()
                and not ln.lstrip().startswith("#")]
    assert len(commands) == 2 and commands[0].endswith("python -m learning demo")
    assert commands[1].endswith("python -m pytest -q")
    assert commands[1] in ci_lines(), ".ci/run must run the README's test line verbatim"


# --------------------------------------------------------------- the harness's own parts


def test_parse_reads_fences_directives_and_indentation() -> None:
    text = "\n".join([
        "# t", "", "<!-- doc-test: slow -->", "<!-- doc-test: expect a b -->",
        "<!-- doc-test: expect 3.5 -->", "```bash", "echo a b 3.5", "```", "",
        "1. item", "", "   ```python", "   x = 1", "     y = 2", "   ```",
        "````text", "```bash", "not a block", "```", "````",
    ])
    blocks, problems = parse(text, "t.md")
    assert problems == []
    assert [(b.lang, b.line, b.slow, b.expects) for b in blocks] == [
        ("bash", 6, True, ["a b", "3.5"]), ("python", 12, False, []), ("text", 16, False, [])]
    assert blocks[1].code == "x = 1\n  y = 2\n"
    assert blocks[2].code == "```bash\nnot a block\n```\n"


def test_parse_reports_what_would_be_skipped_silently() -> None:
    text = "\n".join([
        "<!-- doc-test: expect x -->", "prose", "```sh", "ls", "```", "```", "ls", "```",
        "<!-- doc-test: fast -->", "```bash", "ls", "```", "<!-- doc-test: slow -->",
        "```text", "out", "```", "<!-- doc-test: slow -->",
    ])
    _, problems = parse(text, "t.md")
    kinds = ["not followed", "'sh' does not run", "without a language", "unknown doc-test",
             "on a text block", "end of the file"]
    assert len(problems) == len(kinds)
    for kind, problem in zip(kinds, problems, strict=True):
        assert kind in problem, (kind, problem)


def test_rewrite_checks_pip_and_keeps_pytest_from_recursing() -> None:
    torch_version = metadata.version("torch").split("+")[0]
    line = f'pip install torch=={torch_version} && pip install -e ".[test]" && python -m pytest -q'
    ci = [ln for ln in ci_lines() if ln.endswith("python -m pytest -q")]
    assert ci, ".ci/run runs no `python -m pytest -q` line"
    assert rewrite_bash(line + " && echo ok\n").split("&&")[-1].strip() == "echo ok"
    assert "true" in rewrite_bash(line).split("&&")[2]
    slow = rewrite_bash("python -m pytest -q -m slow\n")
    assert slow.strip() == "python -m pytest -q -m slow --collect-only -q"
    with pytest.raises(DocCommandError, match="no-such-package-xyz is not installed"):
        rewrite_bash("pip install no-such-package-xyz && echo x\n")
    with pytest.raises(DocCommandError, match=r"torch [\d.]+.* is installed"):
        rewrite_bash("pip install 'torch<1'\n")
    with pytest.raises(DocCommandError, match="does not define"):
        rewrite_bash('pip install -e ".[nope]"\n')
    with pytest.raises(DocCommandError, match=r"is not what \.ci/run runs"):
        rewrite_bash("python -m pytest -q -x\n")


def test_the_runner_runs_in_order_shares_python_state_and_stops_at_a_failure(tmp_path) -> None:
    text = "\n".join([
        "```bash", "echo 41 > n.txt", "```", "```python", "import os",
        "n = int(open('n.txt').read()) + 1", "os.system('echo from-a-child')", "```",
        "<!-- doc-test: expect 42 -->", "```python", "print(n)", "```",
        "```bash", "false", "echo never", "```", "```python", "print('not reached')", "```",
    ])
    blocks = [b for b in parse(text, "t.md")[0] if b.runnable]
    with pytest.raises(pytest.fail.Exception) as info:
        run_blocks(blocks, tmp_path, [])
    msg = str(info.value)
    assert "block 4 (bash, line 13): failed (exit status 1)" in msg
    assert "not reached" not in msg and "lacks" not in msg
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["ok"] for r in results] == [True, True, True, False]
    assert "from-a-child" in results[1]["stdout"] and results[2]["stdout"] == "42\n"
