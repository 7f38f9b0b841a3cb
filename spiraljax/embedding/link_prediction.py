r"""Link prediction on a held-out closure split: the protocol of Ganea et al. 2018, §5.

Each candidate pair (u, v) — "u is a descendant of v" — is scored with the is-a score of
Nickel & Kiela (2017, §4.2), written for any curvature:

    score(u, v) = −(1 + α (r_v − r_u)) · d(u, v),   r_x = tanh(√c · d(o, x) / 2),

d the geodesic distance of the embedding's model (ball or hyperboloid) and r_x the
Euclidean norm of x's image in the Poincaré ball of curvature −1, so at c = 1 on the ball
r_x = ‖x‖, the authors' formula. α > 0 rewards a parent nearer the origin than its child;
the symmetric distance alone (α = 0) cannot tell (u, v) from (v, u).

Protocol (the authors' ``eval.py``): for each α in ``ALPHAS`` the classification threshold
maximising F1 on the validation positives and negatives is found; the α with the best
validation F1 and its threshold are then applied to the test pairs. Reported: test F1
(with precision and recall), and — not in the paper — the test ROC AUC at that α, which
needs no threshold.

References: O. Ganea, G. Bécigneul, T. Hofmann, *Hyperbolic Entailment Cones for
Learning Hierarchical Embeddings*, ICML 2018 (arXiv:1804.01882), §5 and the code
github.com/dalab/hyperbolic_cones (``eval.py``, ``split_wordnet_data.py``); M. Nickel,
D. Kiela, *Poincaré Embeddings for Learning Hierarchical Representations*, NeurIPS 2017.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.data import ClosureSplit
from spiraljax.embedding.evaluation import x64_context
from spiraljax.geometry import lorentz, poincare

__all__ = [
    "ALPHAS",
    "LinkPredictionMetrics",
    "best_f1_threshold",
    "classification_metrics",
    "evaluate_link_prediction",
    "isa_scores",
    "roc_auc",
]

#: The α grid of the authors' evaluation (``all.py``).
ALPHAS = (1000.0, 100.0, 30.0, 10.0, 3.0, 1.0, 0.3, 0.1, 0.0)
MANIFOLDS = ("poincare", "lorentz")


class LinkPredictionMetrics(NamedTuple):
    """Test metrics at the α and threshold chosen on validation (module docstring).

    F1, precision and recall are fractions in [0, 1] (the paper prints percentages).
    """

    alpha: float
    threshold: float
    valid_f1: float
    test_f1: float
    test_precision: float
    test_recall: float
    test_auc: float


def isa_scores(
    embedding: np.ndarray,
    pairs: np.ndarray,
    *,
    manifold: str = "poincare",
    curvature: float = -1.0,
    alpha: float = 0.0,
) -> np.ndarray:
    """is-a scores −(1 + α(r_v − r_u))·d(u, v) of the rows (u, v) of ``pairs`` (float64).

    Args:
      embedding: ``(n, d)`` ball points or ``(n, d + 1)`` hyperboloid points.
      pairs: int ``(m, 2)`` rows (descendant u, ancestor v).
      manifold: ``"poincare"`` or ``"lorentz"``; curvature: K < 0 of the embedding.
      alpha: weight of the norm term (0: the negative distance).

    Returns:
      ``(m,)`` float64; higher means more likely an edge.
    """
    if manifold not in MANIFOLDS:
        raise ValueError(f"manifold={manifold!r} must be one of {MANIFOLDS}")
    if not float(curvature) < 0:
        raise ValueError(f"curvature={curvature} must be < 0")
    pairs = np.asarray(pairs).reshape(-1, 2)
    m = len(pairs)
    # Padded to a power of two (with pairs (0, 0)): a few shapes, so a few compilations.
    padded = np.zeros((1 << max(m - 1, 0).bit_length(), 2), pairs.dtype)
    padded[:m] = pairs
    with x64_context("float64"):
        x = jnp.asarray(np.asarray(embedding, np.float64))
        return np.asarray(_isa(x, padded, manifold, float(curvature), float(alpha)))[:m]


@functools.partial(jax.jit, static_argnums=(2,))
def _isa(x, pairs, manifold, curvature, alpha):
    model = lorentz if manifold == "lorentz" else poincare
    u, v = x[pairs[:, 0]], x[pairs[:, 1]]
    d = model.dist(u, v, curvature=curvature)
    half_root_c = jnp.sqrt(-curvature) / 2
    ru = jnp.tanh(half_root_c * model.dist0(u, curvature=curvature))
    rv = jnp.tanh(half_root_c * model.dist0(v, curvature=curvature))
    return -(1 + alpha * (rv - ru)) * d


def _check_scores(pos, neg) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = np.asarray(pos, np.float64).ravel(), np.asarray(neg, np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"need positives and negatives, got {pos.size} and {neg.size}")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("scores must be finite")
    return pos, neg


def classification_metrics(pos, neg, threshold: float) -> tuple[float, float, float]:
    """(precision, recall, F1) of predicting "edge" for score ≥ ``threshold``."""
    pos, neg = _check_scores(pos, neg)
    tp = float(np.sum(pos >= threshold))
    fp = float(np.sum(neg >= threshold))
    fn = pos.size - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / pos.size
    f1 = 2 * tp / (2 * tp + fp + fn)
    return precision, recall, f1


def best_f1_threshold(pos, neg) -> tuple[float, float]:
    """(threshold, F1): the threshold t maximising the F1 of "score ≥ t", and that F1.

    Every distinct score is tried (ties are classified together); O(m log m).
    """
    pos, neg = _check_scores(pos, neg)
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each run of equal scores
    tp, fp, s = tp[last], fp[last], s[last]
    f1 = 2 * tp / (tp + fp + pos.size)  # 2tp / (2tp + fp + fn), fn = P − tp
    i = int(np.argmax(f1))
    return float(s[i]), float(f1[i])


def roc_auc(pos, neg) -> float:
    """ROC AUC = P(score of a positive > score of a negative) + ½ P(tie) (Mann–Whitney)."""
    pos, neg = _check_scores(pos, neg)
    scores = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # average rank (1-based) of each distinct value
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2
    ranks = avg_rank[inverse]
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


def evaluate_link_prediction(
    embedding: np.ndarray,
    split: ClosureSplit,
    *,
    manifold: str = "poincare",
    curvature: float = -1.0,
    alphas=ALPHAS,
) -> LinkPredictionMetrics:
    """Validation-selected α and threshold, test F1 / precision / recall / AUC (module doc).

    Args:
      embedding: points of the split's nodes (row i embeds ``split.names[i]``).
      split: a ``ClosureSplit``.
      manifold, curvature: the embedding's model and K < 0.
      alphas: the α grid searched on validation.
    """
    if np.shape(embedding)[0] != split.num_nodes:
        raise ValueError(
            f"embedding has {np.shape(embedding)[0]} rows, the split {split.num_nodes} nodes"
        )
    kw = dict(manifold=manifold, curvature=curvature)
    best = None
    for alpha in alphas:
        vp = isa_scores(embedding, split.valid, alpha=alpha, **kw)
        vn = isa_scores(embedding, split.valid_negatives, alpha=alpha, **kw)
        threshold, f1 = best_f1_threshold(vp, vn)
        if best is None or f1 > best[2]:
            best = (float(alpha), threshold, f1)
    alpha, threshold, valid_f1 = best
    tp = isa_scores(embedding, split.test, alpha=alpha, **kw)
    tn = isa_scores(embedding, split.test_negatives, alpha=alpha, **kw)
    precision, recall, f1 = classification_metrics(tp, tn, threshold)
    return LinkPredictionMetrics(
        alpha=alpha,
        threshold=threshold,
        valid_f1=valid_f1,
        test_f1=f1,
        test_precision=precision,
        test_recall=recall,
        test_auc=roc_auc(tp, tn),
    )
