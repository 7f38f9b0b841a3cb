"""Graph data for hierarchy embeddings: the shipped WordNet mammal closure and user TSVs.

File format (``child<TAB>parent``), read by ``load_edges``:

* one edge per line, exactly two tab-separated, non-empty fields: the child (hyponym)
  and the parent (hypernym);
* lines starting with ``#`` are comments; whitespace-only lines are skipped;
* UTF-8; a self-loop (child == parent), a repeated edge, a line with another number of
  columns, or a file with no edges is an error naming the file and the line.

Shipped data: ``wordnet_mammal_closure.tsv`` — the transitive closure of the WordNet 3.0
hypernym and instance-hypernym relation under ``mammal.n.01`` (1,180 nouns, 6,540 edges;
the ``mammal_closure`` set of Nickel & Kiela 2017), built by ``scripts/build_wordnet.py``
from the WordNet 3.0 database files. Node names follow nltk (``whale.n.02``): first lemma
of the synset, and its sense number in WordNet's ``index.noun``. The WordNet license is in
``LICENSE.wordnet`` beside the TSV.

The WordNet 3.0 noun hierarchy (82,115 nouns, 743,241 closure edges) ships as its
transitive reduction; ``load_noun_closure`` (``spiraljax/data/nouns.py``) computes and
caches the closure.

``closure_split`` (``spiraljax/data/splits.py``) splits a closure for link prediction as
Ganea, Bécigneul & Hofmann (2018) do: basic edges in training, held-out non-basic edges
with negatives.
"""

from spiraljax.data.edges import (
    MAMMAL_CLOSURE,
    EdgeList,
    load_edges,
    load_mammal_closure,
    transitive_closure,
)
from spiraljax.data.nouns import closure_under, load_noun_closure
from spiraljax.data.splits import ClosureSplit, basic_edge_mask, closure_split

__all__ = [
    "MAMMAL_CLOSURE",
    "ClosureSplit",
    "EdgeList",
    "basic_edge_mask",
    "closure_split",
    "closure_under",
    "load_edges",
    "load_mammal_closure",
    "load_noun_closure",
    "transitive_closure",
]
