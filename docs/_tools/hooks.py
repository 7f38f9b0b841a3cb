"""MkDocs hooks: bring two things that live outside ``docs/`` into the site.

* ``notebooks/*.ipynb`` are served with the site under ``notebooks/`` (so pages can link
  to them and ``mkdocs build --strict`` checks those links), and the marker
  ``<!-- spiraljax:notebooks -->`` in a page is replaced by a table of the notebooks that
  exist at build time (title = first Markdown heading of the notebook).
* ``<!-- spiraljax:include PATH -->`` (PATH relative to the repository root, e.g.
  ``benchmarks/RESULTS.md``) is replaced by that file, headings demoted one level. Its
  relative links to files that exist (JSON tables, plots) are served with the site next
  to the page (the plots ``benchmarks/results/*.png`` drawn by
  ``benchmarks/collect_results.py`` among them); relative links to anything else are turned
  into plain code spans, and an image that does not exist into a note saying so, so a new
  link in an included file can never break the strict build.

* ``<!-- spiraljax:cli-help -->`` is replaced by the ``--help`` text of the ``spiraljax``
  command and of every sub-command, read from ``spiraljax.cli.build_parser()`` in a
  subprocess, so the page always matches the installed command line.

Missing inputs are reported in the page itself (and logged), never silently dropped.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import subprocess
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.spiraljax")

NOTEBOOK_MARKER = "<!-- spiraljax:notebooks -->"
CLI_MARKER = "<!-- spiraljax:cli-help -->"
CLI_SCRIPT = r"""
import argparse, json, os
os.environ["COLUMNS"] = "96"
from spiraljax.cli import build_parser

def walk(parser, path, out):
    out.append((" ".join(path), parser.format_help()))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                walk(sub, path + [name], out)
    return out

print(json.dumps(walk(build_parser(), ["spiraljax"], [])))
"""
INCLUDE = re.compile(r"<!--\s*spiraljax:include\s+(\S+)\s*-->")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)(\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,5} ")

_state: dict[str, object] = {}


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb"))


def _notebook_title(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("notebook %s is not valid JSON: %s", path, exc)
        return path.stem
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        for line in text.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return path.stem


def _is_external(target: str) -> bool:
    return target.startswith(("http://", "https://", "mailto:", "#", "/"))


def _includes(docs_dir: Path) -> dict[str, list[str]]:
    """page src_uri → repo-relative paths it includes."""
    found: dict[str, list[str]] = {}
    for page in docs_dir.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        paths = INCLUDE.findall(text)
        if paths:
            found[page.relative_to(docs_dir).as_posix()] = paths
    return found


def on_files(files: Files, config) -> Files:
    root = _root(config)
    notebooks = _notebooks(root)
    for nb in notebooks:
        files.append(File.generated(config, f"notebooks/{nb.name}", abs_src_path=str(nb)))
    _state["notebooks"] = notebooks

    # Files linked from included documents, served next to the including page.
    served: dict[tuple[str, str], str] = {}
    for page_uri, paths in _includes(Path(config.docs_dir)).items():
        page_dir = posixpath.dirname(page_uri)
        for rel in paths:
            src = root / rel
            if not src.is_file():
                continue
            for _, _, target, _ in LINK.findall(src.read_text(encoding="utf-8")):
                if _is_external(target):
                    continue
                path_part = target.split("#", 1)[0]
                linked = (src.parent / path_part).resolve()
                if not linked.is_file() or linked.suffix == ".md":
                    continue
                try:
                    repo_rel = linked.relative_to(root).as_posix()
                except ValueError:
                    continue
                uri = posixpath.join(page_dir, "_included", repo_rel)
                if files.get_file_from_path(uri) is None:
                    files.append(File.generated(config, uri, abs_src_path=str(linked)))
                served[(rel, target)] = posixpath.join("_included", repo_rel)
    _state["served"] = served
    return files


def _notebook_table(notebooks: list[Path], repo_url: str | None) -> str:
    if not notebooks:
        log.info("no notebooks found in notebooks/")
        return (
            "!!! warning\n    No notebooks were found in `notebooks/` when this site was built.\n"
        )
    lines = ["| notebook | title | download |", "|---|---|---|"]
    for nb in notebooks:
        title = _notebook_title(nb).replace("|", "\\|")
        cell = f"[`{nb.name}`]({nb.name})"
        if repo_url:
            cell += f" · [on the repository]({repo_url.rstrip('/')}/blob/main/notebooks/{nb.name})"
        lines.append(f"| `notebooks/{nb.name}` | {title} | {cell} |")
    return "\n".join(lines) + "\n"


def _include(rel: str, root: Path) -> str:
    src = root / rel
    if not src.is_file():
        log.warning("included file %s does not exist", rel)
        return f"!!! warning\n    `{rel}` did not exist when this site was built.\n"
    text = src.read_text(encoding="utf-8")
    served = _state.get("served", {})

    def relink(m: re.Match) -> str:
        bang, label, target, title = m.groups()
        if _is_external(target):
            return m.group(0)
        new = served.get((rel, target))
        if new is not None:
            anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
            return f"{bang}[{label}]({new}{anchor}{title or ''})"
        # Not a file we can serve (e.g. another Markdown file or a directory).
        path = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if bang:
            log.warning("image %s linked from %s does not exist", path, rel)
            return f"*(image `{path}` did not exist when this site was built)*"
        return f"{label} (`{path}`)" if label else f"`{path}`"

    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            line = LINK.sub(relink, line)
            if HEADING.match(line):
                line = "#" + line
        out.append(line)
    return "\n".join(out) + "\n"


def _cli_help(root: Path) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CLI_SCRIPT],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=120,
        )
        sections = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        sections, proc = None, exc
    if not sections:
        detail = getattr(proc, "stderr", str(proc))[-2000:]
        log.warning("could not read the spiraljax command line: %s", detail)
        return (
            "!!! warning\n"
            "    The `spiraljax` command line could not be read when this site was built.\n"
        )
    out = []
    for name, text in sections:
        out.append(f"### `{name}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    root = _root(config)
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, _cli_help(root))
    if NOTEBOOK_MARKER in markdown:
        table = _notebook_table(_state.get("notebooks", []), config.repo_url)
        markdown = markdown.replace(NOTEBOOK_MARKER, table)
    return INCLUDE.sub(lambda m: _include(m.group(1), root), markdown)
