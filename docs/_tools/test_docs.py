"""Documentation checks, for CI: every page's examples run, and the site builds strictly.

Run with ``python -m pytest -q docs/_tools/test_docs.py`` (CI: add it to the pytest call). The
build test needs the ``docs`` extra (mkdocs, mkdocs-material, mkdocstrings) and is skipped
without it; blocks marked ``.requires-MODULE`` are skipped where MODULE is missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent
DOCS = TOOLS.parent
ROOT = DOCS.parent
sys.path.insert(0, str(TOOLS))

import run_snippets  # noqa: E402

PAGES = [p for p in sorted(DOCS.rglob("*.md")) if run_snippets.blocks(p.read_text("utf-8"))]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page):
    assert run_snippets.main([str(page)]) == 0


def _page(tmp_path, code: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(f"# t\n\n```python\n{code}\n```\n\n```python\nprint('second')\n```\n")
    return page


def test_abort_at_teardown_after_every_block_is_not_a_page_failure(tmp_path, capsys):
    page = _page(tmp_path, "import atexit, os\natexit.register(os.abort)\nprint('first')")
    assert run_snippets.main([str(page)]) == 0
    assert "ok (teardown)" in capsys.readouterr().out


def test_abort_inside_a_block_fails_the_page(tmp_path):
    assert run_snippets.main([str(_page(tmp_path, "import os\nos.abort()"))]) == 1


def test_error_inside_a_block_fails_the_page(tmp_path):
    assert run_snippets.main([str(_page(tmp_path, "raise SystemExit(3)"))]) == 1


#: Sphinx roles render as raw text in mkdocstrings (``:func:`x``` shows ":func:" before
#: the code span); docstrings use plain backticks instead.
SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):")


def raw_roles(site: Path) -> list[str]:
    """``page: excerpt`` for every Sphinx role or "SPEC §" citation left in built HTML."""
    found = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text("utf-8", errors="replace")
        for m in [*SPHINX_ROLE.finditer(text), *re.finditer(r"SPEC\s*§", text)]:
            excerpt = text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ")
            found.append(f"{page.relative_to(site)}: ...{excerpt}...")
    return found


def test_raw_role_finder_finds_a_role(tmp_path):
    (tmp_path / "a.html").write_text("<p>see :func:<code>tanh_ratio</code> (SPEC §6)</p>")
    (tmp_path / "b.html").write_text("<p>see <code>tanh_ratio</code>; a ratio 1:2</p>")
    found = raw_roles(tmp_path)
    assert len(found) == 2 and all(f.startswith("a.html") for f in found)


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    # No docstring renders a raw Sphinx role or cites a SPEC the package does not ship.
    assert raw_roles(site) == []
