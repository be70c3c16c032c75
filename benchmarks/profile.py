"""Where a process's CPU goes: py-spy samples of one process, summarised into categories.

Used by the network benchmark (one node process during a Jungle TLS run) and reusable by any
benchmark that spawns processes. The API, in the order a benchmark calls it:

- :func:`unavailable` -> ``None`` when py-spy is installed and can attach to a process here
  (ptrace is allowed), else the reason, to print instead of a profile;
- :func:`find_process` -> the pid of a descendant of a process whose command line contains
  given words (a node spawned by a launcher), polled from ``/proc``;
- :func:`record` -> a running ``py-spy record --pid PID --format raw`` that stops and writes
  its file when the target exits (or on :func:`stop`);
- :func:`read_raw` -> the samples ``(stack, count)`` of a raw file (root first, leaf last);
- :func:`summarise` -> a :class:`Summary` over categories (a sequence of :class:`Category`;
  :data:`NETWORK_CATEGORIES` by default, a benchmark may pass its own), whose
  :meth:`Summary.markdown` gives the category shares and the top leaf functions.

Classification (:func:`classify`): a sample any of whose frames matches an ``excluded``
category (start-up imports, the output files after the last round, idle waits) belongs to
that phase and is left out of the shares; otherwise its stack is walked from the leaf (the
innermost frame) to the root, and the first frame that matches some category's pattern
decides (categories tried in their order on each frame); a sample no frame matches is
:data:`OTHER`. So a memmove inside the frame decoder counts as decoding, a finiteness check
called by the broadcast as a check, a socket write inside TLS as socket I/O.

Modes: by default (``native=False``, py-spy ``--nonblocking``) only Python frames are seen
and a C call is charged to the Python frame that made it; the target is not paused. With
``native=True`` (py-spy ``--native``, which pauses the target at each sample) C frames
(OpenSSL, BLAKE3, numpy's kernels, the socket module) are seen too, but a loaded 2-core
machine then runs the target several times slower, and py-spy counts threads waiting in
``epoll`` or on a lock as busy (hence the excluded "waiting" category). py-spy samples only
threads it sees as running: the shares are of busy time, which on a loaded machine includes
time a thread was runnable but waiting for a core, so they are shares of demand, close to
but not exactly shares of CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

OTHER = "other"
"""The category of a sample that no frame of its stack matches."""


@dataclass(frozen=True)
class Category:
    """A named class of frames: ``pattern`` is a regular expression searched in each frame's
    text ``"function (file)"`` (py-spy's names, line numbers dropped). ``excluded``: its
    samples are counted apart and left out of the shares (start-up)."""

    name: str
    pattern: str
    excluded: bool = False

    def matches(self, frame: str) -> bool:
        return re.search(self.pattern, frame) is not None


STARTUP = Category("start-up (imports, configuration, the column kernel's preload)",
                   r"_find_and_load|<frozen importlib|_call_with_frames|^load_node \("
                   r"|^preload \(",
                   excluded=True)

NETWORK_CATEGORIES: tuple[Category, ...] = (
    STARTUP,
    Category("after the last round (history and output files)", r"on_decided|save_array",
             excluded=True),
    Category("waiting (idle native frames)",
             r"^(?:epoll_wait|epoll_pwait|poll|select|PyThread_acquire_lock_timed"
             r"|pthread_cond_\w*wait|sem_\w*wait) \(", excluded=True),
    Category("JIT compilation (numba, first calls)", r"numba/|llvmlite"),
    Category("TLS (ssl)", r"libssl|libcrypto|\((?:.*/)?ssl\.py\)|sslproto\.py|_ssl\.cpython"
                          r"|anyio/streams/tls\.py|^(?:SSL_|ssl3_|tls13_|tls1_|EVP_|ossl_|aes|gcm)"),
    Category("digest (blake2/blake3/hashlib)",
             r"blake|hashlib|_sha\d|sha256|sha512|^(?:\w+\.)?digest \("),
    Category("frame decoding (codec)", r"netsim/codec\.py|FrameDecoder"),
    Category("checks (isfinite / norms)",
             r"isfinite|isnan|^norm \(|_finite|nan_to_num|vector_problem|valid_vector"),
    Category("view assembly (np.stack / witness)",
             r"^(?:stack|vstack|concatenate) \((?:.*/)?numpy|broadcast/witness\.py"
             r"|agreement/gathers\.py"),
    Category("the rule (agreement/rules)", r"agreement/rules/"),
    Category("socket send/recv",
             r"^SocketStream\.(?:send|receive)|\((?:.*/)?(?:socket|selector_events)\.py\)"
             r"|^sock_\w+ \(|_socket\.|socket\.cpython|uv__(?:read|write|stream)|UVStream"),
    Category("protocol logic (broadcast/agreement/netsim)",
             r"\((?:broadcast|agreement)/|netsim/(?:protocol|dispatch|messages|adversary)\.py"),
    Category("node runtime and transport (netsim/net)", r"netsim/net/"),
    Category("event loop (asyncio/uvloop/anyio, with uvloop's own socket reads)",
             r"\(asyncio/|uvloop|\(anyio/"),
)
"""The categories of the network benchmark's node profile, in the order tried on each frame
(so TLS, the digest, the codec, the checks and view assembly take precedence, within one
frame, over the broader socket, package and event-loop patterns). Under uvloop the loop
reads sockets in C, with no Python frame of its own: those reads are charged to the event
loop (``Runner.run``), the writes to ``SocketStream.send`` (socket)."""

NO_STACK = "(no Python frame)"
"""A sample py-spy took with an empty stack (the thread outside any Python frame, as during
the interpreter's start-up and shutdown, or a stack it could not read): counted apart, left
out of the shares."""

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_ADDRESS = re.compile(r"^0x[0-9a-f]+$")


def frame_text(frame: str) -> str:
    """A py-spy frame ``"function (file:line)"`` without its line number."""
    m = _FRAME.match(frame)
    return f"{m['func']} ({m['file']})" if m else frame


def read_raw(path: str | Path) -> list[tuple[tuple[str, ...], int]]:
    """The samples of a py-spy ``--format raw`` file: ``(frames root..leaf, count)`` per
    distinct stack, line numbers dropped (an empty stack is ``()``). Lines without a count
    are skipped."""
    out: list[tuple[tuple[str, ...], int]] = []
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = tuple(frame_text(f) for f in stack.split(";")) if stack else ()
        out.append((frames, int(count)))
    return out


def classify(stack: Sequence[str], categories: Sequence[Category]) -> str:
    """The category of one stack (root..leaf). A phase left out of the shares (an
    ``excluded`` category: start-up, output files, waiting) wins if any frame matches it;
    otherwise the first match walking from the leaf; :data:`OTHER` if none;
    :data:`NO_STACK` for an empty stack."""
    if not stack or stack == ("",):
        return NO_STACK
    for cat in categories:
        if cat.excluded and any(cat.matches(frame) for frame in stack):
            return cat.name
    for frame in reversed(stack):
        for cat in categories:
            if not cat.excluded and cat.matches(frame):
                return cat.name
    return OTHER


def leaf_name(stack: Sequence[str]) -> str:
    """The innermost frame's name; an unsymbolised address (``0x7f.. (libc.so.6)``) is named
    by its library and the nearest symbolised caller: ``"libc.so.6 in feed (netsim/codec.py)"``."""
    for k in range(len(stack) - 1, -1, -1):
        m = _FRAME.match(stack[k])
        if m is None or not _ADDRESS.match(m["func"]):
            if k == len(stack) - 1:
                return stack[k]
            lib = _FRAME.match(stack[-1])
            return f"{lib['file'] if lib else stack[-1]} in {stack[k]}"
    return stack[-1] if stack else "(empty)"


@dataclass
class Summary:
    """Busy samples by category and by leaf function; the samples left out of the shares
    (excluded categories, :data:`NO_STACK`) counted apart by category."""

    busy: int = 0
    rate: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)

    def shares(self) -> list[tuple[str, int, float]]:
        """``(category, samples, share of busy)``, largest first."""
        return [(k, v, v / self.busy if self.busy else 0.0)
                for k, v in self.categories.most_common()]

    def markdown(self, top: int = 10) -> str:
        """Two Markdown tables: the categories with their shares of the busy samples, the
        ``top`` leaf functions; above them, what was left out."""
        secs = f" ({self.busy / self.rate:.1f} s at {self.rate} Hz)" if self.rate else ""
        left = "; ".join(f"{k}: {v}" for k, v in self.excluded.most_common())
        lines = [f"{self.busy} busy samples{secs}"
                 + (f"; left out of the shares: {left}" if left else ""),
                 "", "| where the CPU goes | samples | share of busy |", "|---|---|---|"]
        lines += [f"| {k} | {v} | {s:.1%} |" for k, v, s in self.shares()]
        lines += ["", f"| top {top} leaf functions | samples | share of busy |", "|---|---|---|"]
        lines += [f"| `{_cell(k)}` | {v} | {v / self.busy:.1%} |"
                  for k, v in self.leaves.most_common(top)]
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def summarise(samples: Iterable[tuple[Sequence[str], int]],
              categories: Sequence[Category] = NETWORK_CATEGORIES, rate: int = 0) -> Summary:
    """Count ``samples`` (from :func:`read_raw`) by category (:func:`classify`) and by leaf
    (:func:`leaf_name`); an excluded category's and :data:`NO_STACK`'s samples go to
    ``Summary.excluded``. ``rate``: the sampling rate, to print seconds."""
    s = Summary(rate=rate)
    excluded = {c.name for c in categories if c.excluded} | {NO_STACK}
    for stack, count in samples:
        cat = classify(tuple(stack), categories)
        if cat in excluded:
            s.excluded[cat] += count
            continue
        s.busy += count
        s.categories[cat] += count
        s.leaves[leaf_name(stack)] += count
    return s


def py_spy() -> str | None:
    """The py-spy executable on PATH (``pip install -e ".[bench]"``), or ``None``."""
    return shutil.which("py-spy")


_UNAVAILABLE: dict[bool, str | None] = {}


def unavailable(native: bool = True) -> str | None:
    """``None`` if py-spy can sample a running Python process here (``--native`` too when
    ``native``), else why not (not installed; ptrace refused, as in some containers: then a
    cProfile inside the process is the fallback). Checked once per process, on a child that
    sleeps."""
    if native in _UNAVAILABLE:
        return _UNAVAILABLE[native]
    exe = py_spy()
    if exe is None:
        why: str | None = "py-spy is not installed (pip install -e \".[bench]\")"
    else:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            time.sleep(0.3)
            p = subprocess.run([exe, "dump", "--pid", str(child.pid),
                                *(["--native"] if native else [])],
                               capture_output=True, text=True, timeout=30)
            why = None if p.returncode == 0 else (
                "py-spy cannot attach here: " + (p.stderr.strip().splitlines() or ["?"])[0])
        finally:
            child.kill()
            child.wait()
    _UNAVAILABLE[native] = why
    return why


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def find_process(parent: int, words: Sequence[str], timeout: float = 30.0) -> int:
    """The pid of a descendant of ``parent`` whose command line has ``words`` as consecutive
    arguments (``["node"]``, ``["--id", "0"]``: give the distinctive ones), polled every 5 ms
    from ``/proc`` (Linux); ``TimeoutError`` if none appears within ``timeout`` seconds."""
    k = len(words)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        todo = _children(parent)
        while todo:
            pid = todo.pop()
            argv = _cmdline(pid)
            if any(argv[i:i + k] == list(words) for i in range(len(argv) - k + 1)):
                return pid
            todo += _children(pid)
        time.sleep(0.005)
    raise TimeoutError(f"no process {' '.join(words)!r} under pid {parent} within {timeout} s")


def record(pid: int, out: str | Path, *, rate: int = 200, native: bool = True,
           duration: float | None = None) -> subprocess.Popen[bytes]:
    """Start ``py-spy record --pid PID --format raw --rate RATE -o OUT`` (``--native`` when
    ``native``, else ``--nonblocking``: py-spy cannot unwind C frames without pausing the
    target). It stops and writes ``out`` when the target exits, after ``duration`` seconds,
    or on :func:`stop`. ``RuntimeError`` if py-spy is not installed."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install -e \".[bench]\")")
    cmd = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
           "-o", str(out), "--native" if native else "--nonblocking"]
    if duration is not None:
        cmd += ["--duration", str(max(1, round(duration)))]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    """Wait for a :func:`record` to write its file (SIGINT if it still runs after
    ``timeout`` s: py-spy writes what it has); its stderr, for a message on failure."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    return (err or b"").decode(errors="replace")


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.profile FILE [--top K]``: summarise a py-spy raw file with the
    network categories."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile",
                                 description="Summarise a py-spy --format raw file")
    ap.add_argument("file", help="a py-spy record --format raw output")
    ap.add_argument("--top", type=int, default=10, help="leaf functions to list (default 10)")
    ap.add_argument("--rate", type=int, default=0, help="the sampling rate, to print seconds")
    a = ap.parse_args(argv)
    if not os.path.exists(a.file):
        ap.error(f"no such file: {a.file}")
    print(summarise(read_raw(a.file), rate=a.rate).markdown(a.top))


if __name__ == "__main__":
    main()
