"""Poincaré embeddings of hierarchies (Nickel & Kiela 2017): training, evaluation, output.

Application layer: builds on ``spiraljax.geometry`` (ball math), ``spiraljax.optim``
(Riemannian SGD) and ``spiraljax.kernels`` (Rank-K nearest neighbours).
"""

from spiraljax.embedding.evaluation import (
    ReconstructionMetrics,
    neighbour_table,
    ranking_metrics,
    reconstruction_metrics,
)
from spiraljax.embedding.trainer import EmbedConfig, EmbedResult, nickel_kiela_loss, train

__all__ = [
    "EmbedConfig",
    "EmbedResult",
    "ReconstructionMetrics",
    "neighbour_table",
    "nickel_kiela_loss",
    "ranking_metrics",
    "reconstruction_metrics",
    "train",
]
