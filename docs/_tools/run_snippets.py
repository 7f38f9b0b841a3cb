"""Execute the Python examples of the documentation, page by page.

Every fenced block whose info string is ``python`` (or ``{.python ...}``) is executed, in
page order, in one fresh interpreter per page (so a page's examples build on each other,
and each page starts as a user pasting into a new Python session would). Blocks marked
``{.python .no-run}`` are illustrations of *other* libraries (SpiralTorch, geoopt,
jaxopt, PyTorch-only code) and are skipped. Blocks marked ``{.python .requires-MODULE}``
(e.g. ``.requires-torch``) run only where ``MODULE`` is importable; such blocks must come
after the blocks they build on, and skipped ones are reported.

Usage::

    python docs/_tools/run_snippets.py            # every page under docs/
    python docs/_tools/run_snippets.py -v docs/getting-started.md   # -v: show output

Exit status 1 when any page fails; the failing block and its traceback are printed.

One failure is not the page's: a process that loads both PyTorch and JAX can, rarely, be
killed by ``std::terminate`` ("terminate called without an active exception", SIGABRT)
while the interpreter shuts down, after every example has run and printed (C++ thread
pools of the two libraries being torn down; seen once in CI on ``migration/pytorch.md``,
never in 40 local runs of that page on a loaded 2-core machine). The script therefore
ends each page's program with a marker line; a page whose process dies from a signal
*after* that marker is reported as ``ok (teardown)`` with the signal and the end of its
stderr, and does not fail. A signal before the marker, or any non-zero exit status, still
fails the page.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
DONE = "__every_block_ran__"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<info>[^\n]*)$")


def blocks(text: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line number, code, required modules) of every runnable Python block in ``text``."""
    out: list[tuple[int, str, tuple[str, ...]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").strip()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]]
        classes = info.replace("{", " ").replace("}", " ").split()
        lang = classes[0].lstrip(".") if classes else ""
        if lang == "python" and ".no-run" not in classes and "no-run" not in classes:
            needs = tuple(c[len(".requires-") :] for c in classes if c.startswith(".requires-"))
            out.append((start + 1, "\n".join(body), needs))
        i = j + 1
    return out


def _missing(modules: set[str]) -> list[str]:
    return [m for m in sorted(modules) if importlib.util.find_spec(m) is None]


def program(page: Path) -> tuple[str | None, list[str]]:
    """The page's examples as one script, and the required modules that are missing."""
    found = blocks(page.read_text(encoding="utf-8"))
    if not found:
        return None, []
    missing = _missing({m for _, _, needs in found for m in needs})
    parts = [
        f"# --- {page.name}:{line}\n__t__ = __import__('time').perf_counter()\n{code}\n"
        f"__import__('sys').stderr.write("
        f"'  block at line {line}: %.1fs\\n' % (__import__('time').perf_counter() - __t__))\n"
        for line, code, needs in found
        if not set(needs) & set(missing)
    ]
    if not parts:
        return None, missing
    parts.append(
        f"__import__('sys').stdout.flush()\n__import__('sys').stderr.write({DONE!r} + '\\n')\n"
    )
    return "\n".join(parts), missing


def teardown_only(proc: subprocess.CompletedProcess) -> bool:
    """True when the process was killed by a signal after every block had run."""
    return proc.returncode < 0 and DONE in proc.stderr


def _shown(page: Path) -> Path:
    return page.relative_to(DOCS.parent) if page.is_relative_to(DOCS.parent) else page


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    argv = [a for a in argv if a != "-v"]
    pages = [Path(a).resolve() for a in argv] or sorted(DOCS.rglob("*.md"))
    failed = []
    for page in pages:
        src, missing = program(page)
        if missing:
            note = f"blocks needing {', '.join(missing)} skipped"
            print(f"skip           {_shown(page)}: {note}")
        if src is None:
            continue
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", src], capture_output=True, text=True, cwd=DOCS.parent
        )
        dt = time.perf_counter() - t0
        status = "ok" if proc.returncode == 0 else "FAILED"
        if teardown_only(proc):
            status = "ok (teardown)"
        print(f"{status:6} {dt:6.1f}s  {_shown(page)}")
        if status == "ok (teardown)":
            tail = proc.stderr.split(DONE, 1)[1].strip()[-500:]
            print(f"  every block ran; then killed by signal {-proc.returncode}: {tail!r}")
        if verbose and proc.returncode == 0:
            print(proc.stdout)
            print(proc.stderr)
        if status == "FAILED":
            failed.append(page)
            print(proc.stdout[-3000:])
            print(proc.stderr[-6000:])
    if failed:
        print(f"{len(failed)} page(s) failed: {', '.join(str(p) for p in failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
