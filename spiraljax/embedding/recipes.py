"""Shipped datasets and their default training recipes (``spiraljax embed --dataset``).

* ``mammals`` — the WordNet mammal closure (1,180 nouns, 6,540 edges) with the reference
  recipe of Nickel & Kiela (``train-mammals.sh``: dim 5, batch 10, lr 0.3, 300 epochs, 20
  burn-in epochs at lr × 0.1, 50 negatives), the defaults of ``EmbedConfig``.
* ``nouns`` — the WordNet noun closure (82,115 nouns, 743,241 edges) with a large-batch
  recipe for one GPU: dim 10, Riemannian SGD on batches of 4,096 pairs at lr 120,
  20 burn-in epochs at lr × 0.1 with unigram^0.75 negatives, 50 negatives, float64.

Large batches and the learning rate: the batch loss is a *mean* over pairs, so a node's
step shrinks as 1/b with the batch; the learning rate is scaled linearly with the batch
to keep the per-pair step (``lr / batch`` ≈ 0.029 for the nouns) — measured on an H200
(``docs/how-to/wordnet-nouns.md``): 1024/30, 2048/60 and 4096/120 train alike per epoch,
while 8192/240 diverged, so 4,096 is the largest batch of the recipe. ``scaled_lr`` applies
the rule when a user changes the batch but not the learning rate.

float64 is part of the recipe: float32's boundary margin caps points at distance ≈ 6.2
from the origin, too close for the 19 levels of the noun hierarchy (MAP 0.45 vs 0.82 in
the same run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from spiraljax.data import EdgeList, load_mammal_closure, load_noun_closure
from spiraljax.embedding.trainer import EmbedConfig

__all__ = ["DATASETS", "RECIPES", "load_dataset", "recipe", "scaled_lr"]

DATASETS: dict[str, Callable[[], EdgeList]] = {
    "mammals": load_mammal_closure,
    "nouns": load_noun_closure,
}

RECIPES: dict[str, EmbedConfig] = {
    "mammals": EmbedConfig(),
    "nouns": EmbedConfig(
        dim=10,
        epochs=3000,
        lr=120.0,
        negatives=50,
        burn_in=20,
        batch_size=4096,
        dtype="float64",
        optimizer="rsgd",
        lr_schedule="constant",
    ),
}


def _check(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is not one of {sorted(DATASETS)}")


def load_dataset(name: str) -> EdgeList:
    """The shipped closure called ``name`` (``"mammals"`` or ``"nouns"``)."""
    _check(name)
    return DATASETS[name]()


def scaled_lr(name: str, batch_size: int) -> float:
    """The recipe's learning rate scaled linearly to ``batch_size`` (module docstring)."""
    _check(name)
    base = RECIPES[name]
    return base.lr * batch_size / base.batch_size


def recipe(name: str, **overrides) -> EmbedConfig:
    """The default ``EmbedConfig`` of dataset ``name``, with ``overrides`` applied.

    A ``batch_size`` override without an ``lr`` override scales the learning rate
    linearly (``scaled_lr``). Unknown fields raise ``TypeError`` as ``EmbedConfig`` does.
    """
    _check(name)
    if "batch_size" in overrides and "lr" not in overrides:
        overrides["lr"] = scaled_lr(name, overrides["batch_size"])
    return dataclasses.replace(RECIPES[name], **overrides)
