#!/usr/bin/env python3
"""Build the WordNet 3.0 mammal closure shipped as ``spiraljax/data/wordnet_mammal_closure.tsv``.

Reads the WordNet 3.0 database files directly (Debian package ``wordnet-base``, files in
``/usr/share/wordnet/``); no nltk needed::

    apt-get install wordnet-base
    python scripts/build_wordnet.py            # writes spiraljax/data/wordnet_mammal_closure.tsv

What is built (the dataset of Nickel & Kiela 2017, ``mammal_closure`` in
facebookresearch/poincare-embeddings):

* the relation R = hypernym (``@``) ∪ instance hypernym (``@i``) between noun synsets,
  read from the pointer lists of ``data.noun``;
* its transitive closure R⁺ (all ancestors of every noun synset);
* the mammal set M = {mammal.n.01} ∪ {x : (x, mammal.n.01) ∈ R⁺};
* the edges (x, y) ∈ R⁺ with x, y ∈ M, one ``child<TAB>parent`` line each, sorted.

The reference script additionally drops the edges whose child is ``tusker.n.01`` or
``female_mammal.n.01`` (its ``mammals_filter.txt``; the other filter patterns can never
match), because those synsets are also hyponyms of non-mammal concepts; ``--no-filter``
keeps them. With the filter the result is 1,180 nouns and 6,540 edges.

Node names follow the nltk convention ``lemma.n.NN``: ``lemma`` is the synset's first
word in ``data.noun``, lower-cased, and ``NN`` is the 1-based position of the synset's
offset in that lemma's line of ``index.noun`` (WordNet's sense order), zero-padded to two
digits. Example: the synset at offset 02062744 has first word ``whale``; the ``whale`` line
of ``index.noun`` lists ``10129133 02062744`` (sense 1 is "a very large person"), so the
cetacean is named ``whale.n.02``, as in nltk and in the reference ``mammal_closure.csv``.

``--reduction`` writes instead the *transitive reduction* of the relation under ``--root``
(the edges (x, p) with p a direct parent of x that is no ancestor of another parent of x),
LZMA-compressed when the output ends in ``.xz``. Its closure is the closure above; with
``--root entity.n.01`` it is the file shipped as
``spiraljax/data/wordnet_noun_reduction.tsv.xz`` (``spiraljax.data.load_noun_closure``)::

    python scripts/build_wordnet.py --root entity.n.01 --reduction \
        --output spiraljax/data/wordnet_noun_reduction.tsv.xz
"""

from __future__ import annotations

import argparse
import lzma
import os
import sys
from pathlib import Path

ROOT = "mammal.n.01"
# Children dropped by the reference filter (poincare-embeddings wordnet/mammals_filter.txt).
FILTERED_CHILDREN = ("tusker.n.01", "female_mammal.n.01")
DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "spiraljax" / "data" / "wordnet_mammal_closure.tsv"
)


def parse_data_noun(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Return ``{offset: first lemma (lower case)}`` and ``{offset: [parent offsets]}``.

    Parents are the targets of the ``@`` (hypernym) and ``@i`` (instance hypernym)
    pointers that point at nouns.
    """
    first_lemma: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # license header
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, _lexfile, ss_type, w_cnt_hex = fields[:4]
            if ss_type != "n":
                raise ValueError(f"{path}: synset {offset} has type {ss_type!r}, expected 'n'")
            w_cnt = int(w_cnt_hex, 16)
            first_lemma[offset] = fields[4].lower()
            pos = 4 + 2 * w_cnt
            p_cnt = int(fields[pos])
            pos += 1
            ups: list[str] = []
            for _ in range(p_cnt):
                symbol, target, target_pos, _source_target = fields[pos : pos + 4]
                pos += 4
                if symbol in ("@", "@i") and target_pos == "n":
                    ups.append(target)
            parents[offset] = ups
    return first_lemma, parents


def parse_index_noun(path: Path) -> dict[str, list[str]]:
    """Return ``{lemma: [synset offsets in sense order]}`` from ``index.noun``."""
    senses: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split()
            lemma, _pos, synset_cnt = fields[0], fields[1], int(fields[2])
            senses[lemma] = fields[len(fields) - synset_cnt :]
    return senses


def synset_names(first_lemma: dict[str, str], senses: dict[str, list[str]]) -> dict[str, str]:
    """nltk-style ``lemma.n.NN`` name of every synset offset (see module docstring)."""
    names = {}
    for offset, lemma in first_lemma.items():
        number = senses[lemma].index(offset) + 1
        names[offset] = f"{lemma}.n.{number:02d}"
    if len(set(names.values())) != len(names):
        raise ValueError("synset names are not unique")
    return names


def ancestors(parents: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    """Transitive closure: all ancestors of every synset (memoised DFS; WordNet is a DAG)."""
    memo: dict[str, frozenset[str]] = {}

    def visit(node: str) -> frozenset[str]:
        if node not in memo:
            acc: set[str] = set()
            for p in parents[node]:
                acc.add(p)
                acc |= visit(p)
            memo[node] = frozenset(acc)
        return memo[node]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in parents:
        visit(node)
    return memo


def mammal_closure(
    wordnet_dir: Path, *, apply_filter: bool = True, root: str = ROOT
) -> list[tuple[str, str]]:
    """Sorted (child, parent) name pairs of the closure under ``root`` (default mammal.n.01).

    ``root="entity.n.01"`` gives the whole noun hierarchy (the multi-device example of
    ``spiraljax embed --devices``). The reference filter applies to the mammal root only.
    """
    first_lemma, parents = parse_data_noun(wordnet_dir / "data.noun")
    names = synset_names(first_lemma, parse_index_noun(wordnet_dir / "index.noun"))
    closure = ancestors(parents)
    by_name = {v: k for k, v in names.items()}
    if root not in by_name:
        raise ValueError(f"root={root!r} is not a noun synset name of {wordnet_dir}")
    top = by_name[root]
    members = {top} | {x for x, anc in closure.items() if top in anc}
    edges = {(names[x], names[y]) for x in members for y in closure[x] if y in members}
    if apply_filter and root == ROOT:
        edges = {(c, p) for c, p in edges if c not in FILTERED_CHILDREN}
    return sorted(edges)


def reduction(wordnet_dir: Path, *, root: str = ROOT) -> list[tuple[str, str]]:
    """Sorted (child, parent) pairs of the transitive reduction of the relation under ``root``.

    A DAG's reduction is a subset of its edges: (x, p) is kept iff p is a direct parent of
    x and no other direct parent of x has p as an ancestor. Its transitive closure equals
    ``mammal_closure(wordnet_dir, apply_filter=False, root=root)``.
    """
    first_lemma, parents = parse_data_noun(wordnet_dir / "data.noun")
    names = synset_names(first_lemma, parse_index_noun(wordnet_dir / "index.noun"))
    closure = ancestors(parents)
    by_name = {v: k for k, v in names.items()}
    if root not in by_name:
        raise ValueError(f"root={root!r} is not a noun synset name of {wordnet_dir}")
    top = by_name[root]
    members = {top} | {x for x, anc in closure.items() if top in anc}
    edges = set()
    for x in members:
        implied = set().union(*(closure[q] for q in parents[x]))
        edges |= {(names[x], names[p]) for p in parents[x] if p in members and p not in implied}
    return sorted(edges)


def _write(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, fsync and rename over it: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    data = text.encode("utf-8")
    if path.suffix == ".xz":
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--no-filter", action="store_true", help="keep the reference-filtered edges"
    )
    parser.add_argument(
        "--root",
        default=ROOT,
        help="top synset of the closure (default: %(default)s; entity.n.01 = all nouns)",
    )
    parser.add_argument(
        "--reduction",
        action="store_true",
        help="write the transitive reduction instead of the closure (.xz output: compressed)",
    )
    args = parser.parse_args(argv)
    if not (args.wordnet_dir / "data.noun").is_file():
        parser.error(f"{args.wordnet_dir}/data.noun not found (apt-get install wordnet-base)")
    if args.reduction:
        edges = reduction(args.wordnet_dir, root=args.root)
        kind = "transitive reduction"
    else:
        edges = mammal_closure(args.wordnet_dir, apply_filter=not args.no_filter, root=args.root)
        kind = "transitive closure"
    nodes = {n for e in edges for n in e}
    header = (
        f"# WordNet 3.0 noun hierarchy under {args.root}: {kind} of hypernym (@) and\n"
        "# instance hypernym (@i), child<TAB>parent. Built by scripts/build_wordnet.py from the\n"
        "# WordNet 3.0 database (Princeton University; license: LICENSE.wordnet beside it).\n"
        f"# {len(nodes)} nouns, {len(edges)} edges.\n"
    )
    _write(args.output, header + "".join(f"{c}\t{p}\n" for c, p in edges))
    print(f"wrote {args.output}: {len(nodes)} nouns, {len(edges)} edges ({kind})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
