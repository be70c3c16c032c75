"""The fenced code blocks of the documentation, and a runner that executes them in order.

Parsing (:func:`parse`): every fenced block (```` ``` ```` or ``~~~``, at any indentation, its
content de-indented by the fence's indentation) of a Markdown file, with the
``<!-- doc-test: ... -->`` directives on the lines just before it:

- ``<!-- doc-test: slow -->``: the block runs only in the slow suite (``pytest -m slow``);
- ``<!-- doc-test: expect TEXT -->``: the block's stdout must contain TEXT (verbatim).

Blocks fenced ``bash`` or ``python`` run; anything else (``text``, ``toml``,
``console-output``, ...) does not. :func:`parse` also returns the *problems* of a file: a
directive that is unknown or not attached to a runnable block, a fence without a language,
or a shell- or Python-like language other than ``bash``/``python`` (``sh``, ``console``,
``py``, ...), which would otherwise be silently skipped.

Running (:func:`run_plan`, ``python blocks.py PLAN.json RESULTS.json``): the blocks of one
file in order, in the current directory (a scratch copy of the repository), bash blocks as
``bash -euo pipefail SCRIPT`` in their own process group (killed after the block, with any
background process it left), python blocks ``exec``-ed in one namespace shared by the file's
python blocks, their stdout and stderr captured at the file-descriptor level. It stops at the
first failing block and writes the results after every block, so a run cut short still
reports the blocks it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RUNNABLE = ("bash", "python")
# languages that look like commands or code but would not run: the author meant bash/python
MISLABELLED = {"sh", "shell", "zsh", "console", "terminal", "shell-session", "py", "python3",
               "pycon", "ipython", "ipython3", "pytb"}
DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*?)\s*$")


@dataclass
class Block:
    """One fenced block: ``path`` (relative), its ``index`` among the file's blocks (from 0),
    the 1-based ``line`` of its opening fence, its language and code, and its directives."""

    path: str
    index: int
    line: int
    lang: str
    code: str
    slow: bool = False
    expects: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE

    @property
    def label(self) -> str:
        return f"{self.path}, block {self.index + 1} ({self.lang}, line {self.line})"


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (len(stripped) >= len(fence) and set(stripped) == {fence[0]})


def _directive(body: str) -> tuple[str, str] | None:
    if body == "slow":
        return ("slow", "")
    if body.startswith("expect ") and body[len("expect "):].strip():
        return ("expect", body[len("expect "):])
    return None


def parse(text: str, path: str) -> tuple[list[Block], list[str]]:
    """The fenced blocks of a Markdown text and its problems (see the module docstring)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    pending: list[tuple[int, str, str]] = []  # (line, kind, argument) of directives seen
    i = 0
    while i < len(lines):
        line = lines[i]
        d = DIRECTIVE.match(line)
        m = FENCE_OPEN.match(line)
        if d:
            parsed = _directive(d["body"])
            if parsed is None:
                problems.append(f"{path}:{i + 1}: unknown doc-test directive {d['body']!r} "
                                "(known: 'slow', 'expect TEXT')")
            else:
                pending.append((i + 1, *parsed))
            i += 1
            continue
        if m and not (m["fence"][0] == "`" and "`" in m["info"]):
            indent, fence = len(m["indent"].expandtabs(4)), m["fence"]
            lang = m["info"].split()[0].lower() if m["info"] else ""
            body, j = [], i + 1
            while j < len(lines) and not _closes(lines[j], fence):
                raw = lines[j].expandtabs(4)
                strip = min(indent, len(raw) - len(raw.lstrip(" ")))
                body.append(raw[strip:])
                j += 1
            if j == len(lines):
                problems.append(f"{path}:{i + 1}: fence {fence} never closed")
            block = Block(path, len(blocks), i + 1, lang, "\n".join(body) + "\n")
            problems += _attach(block, pending)
            pending = []
            blocks.append(block)
            i = j + 1
            continue
        if line.strip() and pending:
            problems += [f"{path}:{n}: doc-test directive not followed by a code block"
                         for n, _, _ in pending]
            pending = []
        i += 1
    problems += [f"{path}:{n}: doc-test directive at the end of the file" for n, _, _ in pending]
    return blocks, problems


def _attach(block: Block, directives: list[tuple[int, str, str]]) -> list[str]:
    problems = []
    if not block.lang:
        problems.append(f"{block.path}:{block.line}: a fence without a language: use bash or "
                        "python for what runs, text or console-output for what does not")
    elif block.lang in MISLABELLED:
        problems.append(f"{block.path}:{block.line}: fence language {block.lang!r} does not "
                        "run: use bash or python (or text / console-output for output)")
    if directives and not block.runnable:
        problems.append(f"{block.path}:{block.line}: doc-test directives on a "
                        f"{block.lang or 'plain'} block, which does not run")
    for _, kind, arg in directives:
        if kind == "slow":
            block.slow = True
        else:
            block.expects.append(arg)
    return problems


def parse_file(path: Path, root: Path) -> tuple[list[Block], list[str]]:
    """:func:`parse` of a file, named by its path relative to ``root``."""
    return parse(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())


# ---------------------------------------------------------------------------------- runner


@contextlib.contextmanager
def _captured(out: Path, err: Path) -> Iterator[None]:
    """Redirect file descriptors 1 and 2 (Python's and every child's) to two files."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class BlockTimeout(Exception):
    """A python block ran past its time limit."""


def _alarm(signum: int, frame: Any) -> None:
    raise BlockTimeout("the block ran past its time limit")


def _run_bash(code: str, timeout: float, scratch: Path, out: Path, err: Path) -> str | None:
    script = scratch / "block.sh"
    script.write_text(code)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", str(script)], stdin=subprocess.DEVNULL,
                                stdout=fo, stderr=fe, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if rc is None:
        return f"timed out after {timeout:.0f} s"
    return None if rc == 0 else f"exit status {rc}"


def _run_python(code: str, name: str, ns: dict[str, Any], timeout: float, out: Path,
                err: Path) -> str | None:
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with _captured(out, err):
            try:
                exec(compile(code, name, "exec"), ns)
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    return f"SystemExit({exc.code!r})"
            except BaseException:
                return traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return None


def run_plan(plan: list[dict[str, Any]], results_path: Path) -> list[dict[str, Any]]:
    """Run the steps of ``plan`` (dicts with ``index``, ``lang``, ``code``, ``name`` and
    ``timeout``) in order in the current directory; write and return one result per step
    run (``index``, ``ok``, ``error``, ``stdout``, ``stderr``, ``seconds``)."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        out, err = scratch / "stdout", scratch / "stderr"
        for step in plan:
            t0 = time.perf_counter()
            if step["lang"] == "bash":
                error = _run_bash(step["code"], step["timeout"], scratch, out, err)
            else:
                error = _run_python(step["code"], step["name"], ns, step["timeout"], out, err)
            results.append({"index": step["index"], "ok": error is None, "error": error,
                            "stdout": out.read_text(errors="replace"),
                            "stderr": err.read_text(errors="replace"),
                            "seconds": time.perf_counter() - t0})
            results_path.write_text(json.dumps(results))
            if error is not None:
                break
    return results


def plan_step(block: Block, code: str, timeout: float) -> dict[str, Any]:
    """The runner's step for ``block``, running ``code`` (the block's, or its rewrite)."""
    return {**{k: v for k, v in asdict(block).items() if k != "code"}, "code": code,
            "name": f"<{block.label}>", "timeout": timeout}


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # the blocks import the copy, not this folder
    _plan = json.loads(Path(sys.argv[1]).read_text())
    run_plan(_plan, Path(sys.argv[2]))
