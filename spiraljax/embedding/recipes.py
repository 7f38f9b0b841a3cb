"""Shipped datasets and their default training recipes (``spiraljax embed --dataset``).

* ``mammals`` — the WordNet mammal closure (1,180 nouns, 6,540 edges) with the reference
  recipe of Nickel & Kiela (``train-mammals.sh``: dim 5, batch 10, lr 0.3, 300 epochs, 20
  burn-in epochs at lr × 0.1, 50 negatives), the defaults of ``EmbedConfig``.
* ``nouns`` — the WordNet noun closure (82,115 nouns, 743,241 edges) with a large-batch
  recipe for one GPU: dim 10, Riemannian SGD on batches of 4,096 pairs at lr 240 with
  each row's step capped at 0.3 (``max_step``), 50 negatives, float64, 2,500 epochs of
  which the first 500 are the reference's burn-in (``train-nouns.sh``: lr × 0.01, 5
  negatives drawn ∝ the parents' counts). On an H200 (2026-12-04,
  ``benchmarks/results/nouns_burn_in.md``, 85 s of training each): MAP 0.893, mean rank
  3.38 (burn-in of 1,000 epochs: 0.903 / 3.13; 2,000: 0.909 / 3.20) against 0.846 / 7.46
  for the same recipe with the 20-epoch burn-in at lr × 0.1 of the mammals, and 0.82 /
  6.6 for the recipe before (lr 120, no step cap, that burn-in). Nickel & Kiela report
  0.87 / 4.0 after about a CPU-day.

Large batches and the learning rate: the batch loss is a *mean* over pairs, so a node's
step shrinks as 1/b with the batch; the learning rate is scaled linearly with the batch
to keep the per-pair step (``lr / batch``: 0.059 for the nouns) — measured on an H200
(``docs/how-to/wordnet-nouns.md``): without the step cap, 1024/30, 2048/60 and 4096/120
trained alike per epoch while 8192/240 diverged; the cap (``max_step``) allowed 4096/240.
``scaled_lr`` applies the rule when a user changes the batch but not the learning rate.

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
        epochs=2500,
        lr=240.0,
        max_step=0.3,
        negatives=50,
        burn_in=500,
        burn_in_lr_factor=0.01,
        burn_in_negatives=5,
        burn_in_unigram_power=1.0,
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
