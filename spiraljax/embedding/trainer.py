"""Poincaré embeddings of a hierarchy (Nickel & Kiela 2017), trained with Riemannian SGD.

Model: one point θ_i in the Poincaré ball (curvature K, c = −K) per node. For a true
pair (u, v) — u a child, v one of its ancestors in the closure — and negatives
v'_1..v'_k drawn from the nodes that are neither u nor a true neighbour of u, the loss is
the softmax cross-entropy of the positive against the negatives with logits −d::

    L(u, v) = −log( exp(−d(u, v)) / (exp(−d(u, v)) + Σ_j exp(−d(u, v'_j))) ),

d the geodesic distance of the ball (``spiraljax.geometry.poincare.dist``). Each batch
minimises the mean of L over its pairs with ``spiraljax.optim.riemannian_sgd``
(θ ← expmap_θ(−lr · ∇L/λ_θ²), re-projected into the ball; applied to the rows in the
batch, which equals the full-table step since the other rows have zero gradient).

Recipe of the reference implementation (facebookresearch/poincare-embeddings
``train-mammals.sh``, ``hype/graph_dataset.pyx``), followed here:

* initialisation uniform in [−10⁻³, 10⁻³]^d;
* the first ``burn_in`` epochs run at ``lr × burn_in_lr_factor`` and draw negatives from
  the unigram distribution of the parents raised to ``burn_in_unigram_power`` (frequent
  ancestors more often; the reference's ``-dampening``), ``burn_in_negatives`` of them per
  pair (the reference's ``-neg_multiplier × negs``); afterwards ``negatives`` negatives,
  uniform over the nodes. The defaults (0.1, 0.75, all ``negatives``) are those of
  ``hype/train.py`` and the graph dataset; the reference's ``embed.py`` overrides the
  factor to 0.01 by default, and ``train-nouns.sh`` runs the nouns with factor 0.01,
  0.1 × 50 = 5 burn-in negatives and power 1.0 (it passes ``-dampening`` twice, 0.75 then
  1.0; the last wins);
* a candidate negative equal to u or to a true neighbour of u is rejected. Here the k
  candidates are drawn with replacement and rejected ones are masked out of the softmax
  (the reference resamples up to 10·k times instead); a pair whose candidates are all
  rejected has loss 0;
* every epoch visits the edges in a fresh random order, in batches of ``batch_size`` (the
  last batch padded with masked pairs so that the whole epoch is one ``lax.scan``).

Beyond the reference (``EmbedConfig``): Riemannian Adam instead of RSGD
(``optimizer="radam"``), a cosine decay of the learning rate after burn-in
(``lr_schedule="cosine"``), a cap on the length of a row's step (``max_step``) and a wall-clock
budget (``time_budget``). The large-batch recipe
of the WordNet nouns, with its learning-rate scaling, is in ``spiraljax/embedding/recipes.py``
and ``docs/how-to/wordnet-nouns.md``.

The epoch is one jit-compiled function (its negatives drawn up front: memory
O(edges · negatives)), a second one for the burn-in when it draws fewer negatives
(``burn_in_negatives``); a tqdm bar shows the loss, relations/s, the ETA over ``epochs`` and
the time left of ``time_budget``. A row whose gradient is
zero is left exactly as it is (RSGD would only re-round it), so the update can act on the
batch's gathered rows or on the whole table (when b·(2 + k) ≥ n, cheaper) alike.

Several devices (``EmbedConfig.devices = N``) — data parallel, table replicated:

* every device holds the whole (n, d) table (``MeshLayout.replicated``) and draws and
  processes b/N pairs of each batch (``shard_map`` over the mesh axis ``"rows"``, the
  pairs of the batch split like rows), producing its part of the dense (n, d) gradient;
* a reduce-scatter sums the parts and hands device i the rows of its block
  [i·n/N, (i+1)·n/N); device i applies the RSGD step to that block, and an all-gather of
  the blocks gives every device the new table. The step and its rows are those of one
  device: only the order in which the gradient's terms are summed differs (equal to the
  one-device run to ~1e-15 in float64).

Bytes per step and device: 2·(N − 1)/N · n·d·s (s bytes per scalar), the same as one ring
all-reduce of the gradient, whatever the batch. For the WordNet nouns (n = 82,115, d = 10)
on 2 devices: 3.3 MB in float32, 6.6 MB in float64. The alternatives, per step:

* the table sharded by rows and left to XLA's SPMD partitioner (the first version here):
  every gather and scatter on the sharded table becomes collectives, several per step;
  on CPU-emulated devices it ran 2.4× slower than one device on 2 (WordNet nouns, batch
  1024) and 21× slower on 8 (mammals, batch 16);
* all-gathering the gathered rows' gradients instead of reducing the dense gradient:
  (N − 1)/N · b·(2 + k)·d·s bytes, fewer only for batches under 2n/(2 + k) ≈ 3,200 pairs
  (k = 50), and every device must then scatter and update all b·(2 + k) rows;
* one all-reduce (psum) of the gradient and the update repeated on every device: the same
  bytes in one collective, but the update — half a step on a CPU — is not divided.

Replicating costs memory, not time: per device the table and a dense gradient, 2·n·d·s
(13 MB for the nouns in float64), plus the epoch's negatives of its pairs. The devices buy
speed for batches large enough that each device's part outweighs the per-step collectives
(thousands of pairs); they do not let a table outgrow one device.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.data import EdgeList
from spiraljax.distributed.layout import ROWS
from spiraljax.embedding.evaluation import neighbour_table, x64_context
from spiraljax.geometry import lorentz, poincare
from spiraljax.optim import apply_updates, riemannian_adam, riemannian_sgd

__all__ = ["EmbedConfig", "EmbedResult", "nickel_kiela_loss", "train"]

BURN_IN_LR_MULTIPLIER = 0.1  # default of EmbedConfig.burn_in_lr_factor
UNIGRAM_POWER = 0.75  # default of EmbedConfig.burn_in_unigram_power
OPTIMIZERS = ("rsgd", "radam")
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.01


@dataclasses.dataclass(frozen=True)
class EmbedConfig:
    """Training settings. Defaults are the reference mammal recipe (``train-mammals.sh``).

    Attributes:
      dim: embedding dimension.
      epochs: passes over the edges, burn-in included.
      lr: learning rate of Riemannian SGD after burn-in.
      negatives: negatives drawn per positive pair.
      burn_in: number of initial epochs at ``lr × burn_in_lr_factor`` with unigram
        negatives.
      burn_in_lr_factor: the burn-in's learning rate as a multiple of ``lr`` (finite,
        > 0). Default 0.1 (``hype/train.py``'s ``_lr_multiplier``); the reference's
        ``embed.py`` overrides it with ``-burnin_multiplier``, default 0.01, so its
        mammal and noun scripts both run the burn-in at ``lr × 0.01``.
      burn_in_negatives: negatives per pair during burn-in, 1 … ``negatives``; ``None``
        (default) draws ``negatives``. The reference draws ``int(neg_multiplier ·
        negs)``: 5 of 50 in ``train-nouns.sh`` (``-neg_multiplier 0.1``). Fewer than
        ``negatives`` compiles a second epoch function for the burn-in, whose steps are
        cheaper (they gather b·(2 + burn_in_negatives) rows instead of b·(2 + negatives)).
      burn_in_unigram_power: the burn-in's negatives are drawn ∝ (times the node is a
        parent) ** this power (finite, ≥ 0); default 0.75 (the reference's
        ``-dampening``; 1.0 in ``train-nouns.sh``). 0 draws uniformly over all nodes.
      batch_size: positive pairs per step.
      seed: PRNG seed (initialisation, edge order, negatives).
      curvature: K < 0 of the ball.
      dtype: ``"float64"`` (default) or ``"float32"``. Training runs inside
        ``jax.enable_x64(True)`` for float64, whatever the global setting. Both keep
        points at norm ≤ 1 − 10⁻⁵ (reach ≈ 12.2 from the origin); the demo recipe on the
        mammals gives MAP ≈ 0.95 in either (float32 was capped at ≈ 0.78 by the former
        4·10⁻³ float32 margin).
      retraction: ``"expmap"`` (exact exponential map) or ``"first_order"``
        (``project(θ − lr·rgrad)``, the reference code's update).
      manifold: ``"poincare"`` (the ball, Nickel & Kiela 2017) or ``"lorentz"`` (the
        hyperboloid, Nickel & Kiela 2018: rows are (dim + 1)-vectors on ⟨x, x⟩_L = −1/c,
        distances and RSGD of ``spiraljax.geometry.lorentz``, initialised by lifting the
        same uniform spatial coordinates). The reference code trains the Lorentz model
        with the same recipe (its ``-manifold lorentz``).
      devices: number of devices to train on (data parallel). With more than one, the
        embedding table is **replicated** on every device (``MeshLayout.replicated``;
        each holds all n·d values) and every batch is split by pairs over a 1-D mesh;
        per step, a reduce-scatter of the gradient and an all-gather of the updated row
        blocks (module docstring). The result equals the one-device run up to the
        summation order of the gradient. ``batch_size`` must be divisible by
        ``devices``; use batches of thousands of pairs, since each step moves about one
        all-reduce of the table whatever the batch.
      optimizer: ``"rsgd"`` (Riemannian SGD, the reference) or ``"radam"`` (Riemannian
        Adam, ``spiraljax.optim.riemannian_adam``, default betas; its moments cover the
        whole table, so every step updates the table densely; rows with a zero gradient in
        a step are kept where they are while their moments decay). Burn-in runs either at
        ``lr × burn_in_lr_factor``.
      lr_schedule: after burn-in, ``"constant"`` (``lr``, the reference) or ``"cosine"``
        (half a cosine from ``lr`` down to ``lr × 0.01`` at the last step of ``epochs``;
        a run cut short by ``time_budget`` stops before the end of the decay).
      max_step: cap on the length of one row's step, ``lr·‖rgrad‖`` in the metric at the
        row (its Riemannian gradient scaled down where longer; the cap holds at the main
        ``lr``, so burn-in and decayed steps are capped at ``max_step`` times their lr
        ratio); ``None`` (default, the reference) caps nothing. In a large batch a node of
        high degree (a top of the hierarchy, in thousands of the batch's pairs) sums as
        many gradient terms into one step, which can throw it across the ball; the cap
        keeps such steps bounded while leaving the typical row's step as it is. With
        ``optimizer="radam"`` the same scaling applies to the gradient fed to Adam, which
        normalises it: there it does not bound the step.
      time_budget: stop after the first epoch that ends past this many seconds of
        training (compilation included); ``None`` runs all ``epochs``. The schedule does
        not depend on it (burn-in is still the first ``burn_in`` epochs).
    """

    dim: int = 5
    epochs: int = 300
    lr: float = 0.3
    negatives: int = 50
    burn_in: int = 20
    batch_size: int = 10
    seed: int = 0
    curvature: float = -1.0
    dtype: str = "float64"
    retraction: str = "expmap"
    devices: int = 1
    optimizer: str = "rsgd"
    lr_schedule: str = "constant"
    time_budget: float | None = None
    manifold: str = "poincare"
    max_step: float | None = None
    burn_in_lr_factor: float = BURN_IN_LR_MULTIPLIER
    burn_in_negatives: int | None = None
    burn_in_unigram_power: float = UNIGRAM_POWER

    def __post_init__(self) -> None:
        for name, low in (
            ("dim", 1),
            ("epochs", 1),
            ("negatives", 1),
            ("batch_size", 1),
            ("devices", 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name}={value!r} must be an integer ≥ {low}")
        if not isinstance(self.burn_in, int | np.integer) or self.burn_in < 0:
            raise ValueError(f"burn_in={self.burn_in!r} must be an integer ≥ 0")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr!r} must be a finite number > 0")
        factor = self.burn_in_lr_factor
        if not (_is_real(factor) and math.isfinite(factor) and factor > 0):
            raise ValueError(f"burn_in_lr_factor={factor!r} must be a finite number > 0")
        power = self.burn_in_unigram_power
        if not (_is_real(power) and math.isfinite(power) and power >= 0):
            raise ValueError(f"burn_in_unigram_power={power!r} must be a finite number ≥ 0")
        k_burn = self.burn_in_negatives
        if k_burn is not None and not (
            isinstance(k_burn, int | np.integer)
            and not isinstance(k_burn, bool)
            and 1 <= k_burn <= self.negatives
        ):
            raise ValueError(
                f"burn_in_negatives={k_burn!r} must be None or an integer in "
                f"[1, negatives={self.negatives}]"
            )
        if not (math.isfinite(self.curvature) and self.curvature < 0):
            raise ValueError(f"curvature={self.curvature!r} must be finite and < 0")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype={self.dtype!r} must be 'float32' or 'float64'")
        if self.retraction not in ("expmap", "first_order"):
            raise ValueError(f"retraction={self.retraction!r} must be 'expmap' or 'first_order'")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} must be one of {OPTIMIZERS}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={self.lr_schedule!r} must be one of {LR_SCHEDULES}")
        if self.time_budget is not None and not (
            isinstance(self.time_budget, int | float) and self.time_budget > 0
        ):
            raise ValueError(f"time_budget={self.time_budget!r} must be None or a number > 0")
        if self.max_step is not None and not (
            isinstance(self.max_step, int | float)
            and math.isfinite(self.max_step)
            and self.max_step > 0
        ):
            raise ValueError(f"max_step={self.max_step!r} must be None or a finite number > 0")
        if self.manifold not in ("poincare", "lorentz"):
            raise ValueError(f"manifold={self.manifold!r} must be 'poincare' or 'lorentz'")
        if self.batch_size % self.devices:
            raise ValueError(
                f"batch_size={self.batch_size} must be divisible by devices={self.devices}"
            )


def _is_real(value) -> bool:
    """A Python or NumPy real number (not a bool, not a string)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class EmbedResult:
    """Output of ``train``.

    Attributes:
      embedding: (n, dim) numpy array of ball points (``manifold="poincare"``) or
        (n, dim + 1) hyperboloid points (``"lorentz"``); row i embeds ``names[i]``.
      names: node names.
      losses: (epochs run,) mean training loss of each epoch (fewer than
        ``config.epochs`` when ``config.time_budget`` stopped the run).
      relations_per_second: edges processed per second in each epoch (wall clock; the
        first epoch includes jit compilation).
      train_seconds: wall time of all epochs, compilation included.
      config: the settings used.
    """

    embedding: np.ndarray
    names: tuple[str, ...]
    losses: np.ndarray
    relations_per_second: np.ndarray
    train_seconds: float
    config: EmbedConfig

    @property
    def steady_relations_per_second(self) -> float:
        """Median relations/s over the epochs after the first (which compiles)."""
        rest = self.relations_per_second[1:]
        return float(np.median(rest if rest.size else self.relations_per_second))


class _Tables(NamedTuple):
    edges: jax.Array  # (m, 2) int32
    neighbours: jax.Array  # (n, max_degree) int32, −1 padded: true neighbours of each node
    unigram_cdf: jax.Array  # (n,) float32, cumulative unigram^power distribution


def nickel_kiela_loss(
    table: jax.Array,
    pairs: jax.Array,
    negatives: jax.Array,
    negative_mask: jax.Array,
    pair_mask: jax.Array,
    *,
    curvature: float = -1.0,
    manifold: str = "poincare",
) -> jax.Array:
    """Mean softmax loss of positive pairs against their negatives (module docstring).

    Args:
      table: (n, d) embedding points.
      pairs: (b, 2) int (u, v) ids of the true pairs.
      negatives: (b, k) int ids of the negatives of each pair.
      negative_mask: (b, k) bool, False for rejected negatives (excluded from the softmax).
      pair_mask: (b,) bool, False for padding pairs (excluded from the mean).
      curvature: K < 0.
      manifold: ``"poincare"`` ((n, d) ball points) or ``"lorentz"`` ((n, d+1) points).

    Returns:
      Scalar: Σ_pairs mask·L / max(1, Σ mask).
    """
    per_pair = _pair_losses(table, pairs, negatives, negative_mask, curvature, manifold)
    weight = pair_mask.astype(per_pair.dtype)
    return jnp.sum(per_pair * weight) / jnp.maximum(jnp.sum(weight), 1)


def _pair_losses(table, pairs, negatives, negative_mask, curvature, manifold="poincare"):
    """(b,) loss L(u, v) of every pair (module docstring)."""
    u = table[pairs[:, 0]]
    candidates = jnp.concatenate([pairs[:, 1:], negatives], axis=1)  # (b, 1 + k)
    model = lorentz if manifold == "lorentz" else poincare
    d = model.dist(u[:, None, :], table[candidates], curvature=curvature)
    keep = jnp.concatenate([jnp.ones_like(negative_mask[:, :1]), negative_mask], axis=1)
    logits = jnp.where(keep, -d, -jnp.inf)
    return jax.nn.logsumexp(logits, axis=1) - logits[:, 0]


def _tables(graph: EdgeList, unigram_power: float = UNIGRAM_POWER) -> _Tables:
    n = graph.num_nodes
    sources, table = neighbour_table(graph)
    neighbours = np.full((n, table.shape[1]), -1, np.int32)
    neighbours[sources] = table
    counts = np.bincount(graph.edges[:, 1], minlength=n).astype(np.float64)
    with np.errstate(over="ignore"):
        weights = counts**unigram_power
    if not np.isfinite(weights.sum()):  # a large power overflows: scale the counts first
        weights = (counts / counts.max()) ** unigram_power
    cdf = np.cumsum(weights / weights.sum())
    return _Tables(jnp.asarray(graph.edges), jnp.asarray(neighbours), jnp.asarray(cdf, jnp.float32))


def _sample_negatives(key, u, tables: _Tables, k: int, burn_in):
    """Child ids ``u`` (any shape S) → (S, k) candidate negatives and their validity mask.

    ``burn_in`` (a traced bool) selects the unigram sampler (``tables.unigram_cdf``) over
    the uniform one, so both phases can share one compiled epoch.
    """
    n = tables.neighbours.shape[0]
    shape = (*u.shape, k)
    uni_key, unigram_key = jax.random.split(key)
    uniform = jax.random.randint(uni_key, shape, 0, n, jnp.int32)
    draw = jax.random.uniform(unigram_key, shape, jnp.float32)
    unigram = jnp.searchsorted(tables.unigram_cdf, draw, side="right").astype(jnp.int32)
    cand = jnp.where(burn_in, jnp.minimum(unigram, n - 1), uniform)
    nbrs = tables.neighbours[u]  # (S, max_degree)
    is_nbr = jnp.any(cand[..., :, None] == nbrs[..., None, :], axis=-1)
    return cand, (cand != u[..., None]) & ~is_nbr


def _cap_row_steps(g, x, max_rgrad, curvature, manifold):
    """Scale each row of the Euclidean gradient ``g`` so that its Riemannian gradient at
    ``x`` has norm ≤ ``max_rgrad`` (rows under the cap, and zero rows, are unchanged).

    rgrad is linear in g, so scaling g by s scales rgrad (and the step) by s.
    """
    model = lorentz if manifold == "lorentz" else poincare
    size = model.norm(x, model.egrad2rgrad(x, g, curvature=curvature), curvature=curvature)
    scale = jnp.minimum(1.0, max_rgrad / jnp.maximum(size, jnp.finfo(g.dtype).tiny))
    return g * scale[..., None].astype(g.dtype)


def _update_rows(
    optimizer, table, grad, rows, opt_state, curvature, manifold="poincare", max_rgrad=None
):
    """Riemannian SGD on the rows ``rows`` of ``table`` (all rows when ``rows`` is None).

    ``max_rgrad``: cap on every row's Riemannian gradient norm (``_cap_row_steps``), or None.

    A row whose gradient is zero is kept bit-for-bit: mathematically RSGD leaves it where it
    is, but ``project(x + (expmap(x, 0) − x))`` may move it by an ulp, and keeping it exact
    makes the sparse (gathered rows) and dense (whole table) forms give the same table.
    Duplicated ids carry the same summed gradient and write the same value.
    """
    g = grad if rows is None else grad[rows]
    x = table if rows is None else table[rows]
    if max_rgrad is not None:
        g = _cap_row_steps(g, x, max_rgrad, curvature, manifold)
    updates, opt_state = optimizer.update(g, opt_state, x)
    new = apply_updates(x, updates, curvature=curvature, manifold=manifold)
    new = jnp.where(jnp.any(g != 0, axis=-1, keepdims=True), new, x)
    return (new if rows is None else table.at[rows].set(new)), opt_state


def _update_own_block(
    optimizer, table, grad, opt_state, curvature, manifold="poincare", max_rgrad=None
):
    """One data-parallel step inside ``shard_map`` over the mesh axis ``"rows"``.

    ``table`` (n, d) is replicated and ``grad`` (n, d) is this device's part of the batch
    gradient. Reduce-scatter sums the parts and leaves device i the rows of its block
    [i·n/N, (i+1)·n/N); it updates them (``_update_rows``, dense) and an all-gather
    of the blocks rebuilds the replicated table. The two collectives are the two halves of
    a ring all-reduce, so the bytes are those of one all-reduce of the gradient, while the
    update is split over the devices instead of repeated on each.
    """
    block_rows = table.shape[0] // jax.lax.axis_size(ROWS)
    grad = jax.lax.psum_scatter(grad, ROWS, scatter_dimension=0, tiled=True)
    start = jax.lax.axis_index(ROWS) * block_rows
    block = jax.lax.dynamic_slice_in_dim(table, start, block_rows)
    block, opt_state = _update_rows(
        optimizer, block, grad, None, opt_state, curvature, manifold, max_rgrad
    )
    return jax.lax.all_gather(block, ROWS, tiled=True), opt_state


def _make_optimizer(
    name: str, schedule, curvature: float, retraction: str, manifold: str = "poincare"
):
    """The Riemannian optax transform named by ``EmbedConfig.optimizer``."""
    if name == "radam":
        return riemannian_adam(
            schedule, curvature=curvature, retraction=retraction, manifold=manifold
        )
    return riemannian_sgd(schedule, curvature=curvature, retraction=retraction, manifold=manifold)


@functools.lru_cache(maxsize=16)
def _epoch_function(
    batch_size: int,
    negatives: int,
    curvature: float,
    retraction: str,
    lr: float,
    steps_burn_in: int,
    num_batches: int,
    mesh: Any = None,
    dense: bool = False,
    optimizer_name: str = "rsgd",
    lr_schedule: str = "constant",
    steps_total: int = 0,
    manifold: str = "poincare",
    max_step: float | None = None,
    burn_in_lr_factor: float = BURN_IN_LR_MULTIPLIER,
):
    """``(optimizer, epoch)``: the RSGD transform with the burn-in schedule, and a
    jit-compiled epoch (permute the edges, draw the negatives, ``lax.scan`` over batches).

    ``dense``: update the whole table each step (rows with a zero gradient kept exactly)
    instead of gathering the batch's b·(2 + k) rows; cheaper once b·(2 + k) ≥ n, and
    required by optimizers with per-row state (``"radam"``). ``mesh``:
    a 1-D mesh (axis ``"rows"``) to split every batch over, data-parallel, with the table
    replicated and each device updating its block of rows (module docstring, "Several
    devices"); the table must have a multiple of the mesh size rows.

    Cached on the settings that shape the computation, so repeated runs (other seeds or
    data of the same size) reuse the compilation.
    """
    b, k = batch_size, negatives
    lr_burn_in = lr * burn_in_lr_factor
    # A step is lr_t·rgrad with lr_t ≤ lr: capping ‖rgrad‖ at max_step / lr caps its length.
    max_rgrad = None if max_step is None else max_step / lr

    def schedule(count):
        if lr_schedule == "cosine":
            # Half a cosine from lr (end of burn-in) to lr·COSINE_FLOOR (last step).
            t = (count - steps_burn_in) / max(steps_total - steps_burn_in, 1)
            main = lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + jnp.cos(jnp.pi * t)))
        else:
            main = lr
        return jnp.where(count < steps_burn_in, lr_burn_in, main)

    optimizer = _make_optimizer(optimizer_name, schedule, curvature, retraction, manifold)

    def objective(table, pairs, negs, neg_mask, pair_mask, denominator):
        # Σ over this device's pairs / (valid pairs of the whole batch): the per-device
        # terms add up to the batch mean, so their gradients add up to its gradient.
        per_pair = _pair_losses(table, pairs, negs, neg_mask, curvature, manifold)
        total = jnp.sum(per_pair * pair_mask.astype(per_pair.dtype))
        return total / denominator, total

    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def scan_batches(table, opt_state, pairs, negs, neg_mask, pair_mask, denominators):
        """Sequential steps over this device's part of every batch."""

        def step(carry, xs):
            table, opt_state = carry
            pairs, negs, neg_mask, pair_mask, denominator = xs
            (_, total), grad = grad_fn(table, pairs, negs, neg_mask, pair_mask, denominator)
            if mesh is None:
                rows = None if dense else jnp.concatenate([pairs, negs], axis=1).reshape(-1)
                table, opt_state = _update_rows(
                    optimizer, table, grad, rows, opt_state, curvature, manifold, max_rgrad
                )
            else:
                table, opt_state = _update_own_block(
                    optimizer, table, grad, opt_state, curvature, manifold, max_rgrad
                )
            return (table, opt_state), total

        xs = (pairs, negs, neg_mask, pair_mask, denominators)
        (table, opt_state), totals = jax.lax.scan(step, (table, opt_state), xs)
        return table, opt_state, totals

    if mesh is not None:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        split = P(None, ROWS)  # (batches, pairs, ...): the pairs of every batch
        scan_batches = jax.shard_map(
            scan_batches,
            mesh=mesh,
            in_specs=(P(), P(), split, split, split, split, P()),
            out_specs=(P(), P(), P(ROWS)),
            # Without replication tracking autodiff inserts no psum of its own for the
            # gradient of the replicated table: the collectives are exactly the two of
            # ``_update_own_block``.
            check_vma=False,
        )

        def split_batches(x):
            return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, split))

    else:

        def split_batches(x):
            return x

    def epoch(table, opt_state, key, tables: _Tables, burn_in):
        m = tables.edges.shape[0]
        perm_key, neg_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, m)
        pad = num_batches * b - m
        order = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(num_batches, b)
        pair_mask = (jnp.arange(num_batches * b) < m).reshape(num_batches, b)
        denominators = jnp.maximum(pair_mask.sum(axis=1), 1).astype(table.dtype)
        # All negatives of the epoch are drawn at once, outside the sequential scan; with a
        # mesh, each device draws those of its own pairs (threefry is partitionable).
        pairs = split_batches(tables.edges[order])  # (num_batches, b, 2)
        negs, neg_mask = _sample_negatives(neg_key, pairs[..., 0], tables, k, burn_in)
        table, opt_state, totals = scan_batches(
            table,
            opt_state,
            pairs,
            split_batches(negs),
            split_batches(neg_mask),
            split_batches(pair_mask),
            denominators,
        )
        return table, opt_state, jnp.sum(totals) / m

    return optimizer, jax.jit(epoch, donate_argnums=(0, 1))


def _dense_update(config: EmbedConfig, num_nodes: int) -> bool:
    """One device: whole-table updates once a batch gathers at least as many rows as the
    table holds, or when the optimizer keeps per-row state (Riemannian Adam). (Several
    devices always update their blocks densely.)"""
    if config.optimizer != "rsgd":
        return True
    return config.batch_size * (2 + config.negatives) >= num_nodes


def train(
    graph: EdgeList,
    config: EmbedConfig = EmbedConfig(),
    *,
    progress: bool = True,
    callback: Callable[[int, float], Any] | None = None,
    table_callback: Callable[[int, jax.Array], Any] | None = None,
) -> EmbedResult:
    """Train Poincaré embeddings of ``graph`` (module docstring).

    Args:
      graph: the true (child, parent) pairs, usually a transitive closure.
      config: training settings.
      progress: show a tqdm progress bar (loss, relations/s).
      callback: called as ``callback(epoch, loss)`` after every epoch.
      table_callback: called as ``table_callback(epoch, table)`` after every epoch with the
        current embedding table (a device array, rows as in ``EmbedResult.embedding``), e.g.
        to evaluate checkpoints; it must not keep the array past the call (the next epoch
        reuses its buffer).

    Returns:
      An ``EmbedResult``.
    """
    with x64_context(config.dtype):
        return _train(
            graph, config, progress=progress, callback=callback, table_callback=table_callback
        )


def _train(
    graph: EdgeList, config: EmbedConfig, *, progress: bool, callback, table_callback=None
) -> EmbedResult:
    from tqdm import tqdm

    dtype = jnp.dtype(config.dtype)
    tables = _tables(graph, float(config.burn_in_unigram_power))
    m = graph.num_edges
    num_batches = -(-m // config.batch_size)
    mesh = None
    if config.devices > 1:
        from spiraljax.distributed import MeshLayout

        if config.devices > jax.device_count():
            raise ValueError(
                f"devices={config.devices} exceeds the {jax.device_count()} available devices"
            )
        replicated = MeshLayout.replicated(config.devices)
        mesh = replicated.mesh

    def epoch_function(phase: EmbedConfig):
        return _epoch_function(
            phase.batch_size,
            phase.negatives,
            float(phase.curvature),
            phase.retraction,
            float(phase.lr),
            phase.burn_in * num_batches,
            num_batches,
            mesh,
            _dense_update(phase, graph.num_nodes),
            phase.optimizer,
            phase.lr_schedule,
            phase.epochs * num_batches,
            phase.manifold,
            None if phase.max_step is None else float(phase.max_step),
            float(phase.burn_in_lr_factor),
        )

    optimizer, main_epoch = epoch_function(config)
    burn_in_epoch = main_epoch
    k_burn = config.burn_in_negatives
    if config.burn_in and k_burn is not None and k_burn != config.negatives:
        # Fewer negatives in burn-in: an epoch function of their own (its own compilation,
        # cheaper steps). The schedule and the optimizer state are those of the main one.
        burn_in_config = dataclasses.replace(config, negatives=k_burn, burn_in_negatives=None)
        _, burn_in_epoch = epoch_function(burn_in_config)
    key = jax.random.key(config.seed)
    key, init_key = jax.random.split(key)
    table = jax.random.uniform(init_key, (graph.num_nodes, config.dim), dtype, -1e-3, 1e-3)
    if config.manifold == "lorentz":
        # the same spatial coordinates, lifted onto the hyperboloid (x₀ = √(1/c + ‖x‖²))
        table = jnp.concatenate([jnp.zeros_like(table[:, :1]), table], axis=1)
        table = lorentz.project(table, curvature=config.curvature)
    else:
        table = poincare.project(table, curvature=config.curvature)
    if mesh is not None:
        # Padding rows (never sampled: ids stay < num_nodes) make the blocks of rows that
        # the devices update divide evenly; their gradient is zero, so they never move.
        pad = -graph.num_nodes % config.devices
        table = jnp.concatenate([table, jnp.zeros((pad, table.shape[1]), dtype)])
        table = jax.device_put(table, replicated)
    opt_state = optimizer.init(table)
    if mesh is not None:
        opt_state = jax.device_put(opt_state, replicated)

    losses = np.zeros(config.epochs)
    rates = np.zeros(config.epochs)
    bar = tqdm(range(config.epochs), desc="embedding", unit="epoch", disable=not progress)
    start = time.perf_counter()
    epochs_run = 0
    for e in bar:
        burn_in = e < config.burn_in
        key, epoch_key = jax.random.split(key)
        t0 = time.perf_counter()
        epoch_fn = burn_in_epoch if burn_in else main_epoch
        table, opt_state, loss = epoch_fn(table, opt_state, epoch_key, tables, jnp.asarray(burn_in))
        losses[e] = float(loss)  # blocks until the epoch is done
        rates[e] = m / (time.perf_counter() - t0)
        epochs_run = e + 1
        elapsed = time.perf_counter() - start
        phase = "burn-in" if burn_in else "main"
        postfix = {"phase": phase, "loss": f"{losses[e]:.4f}", "rel_s": f"{rates[e]:,.0f}"}
        if config.time_budget is not None:
            postfix["budget_left"] = f"{max(config.time_budget - elapsed, 0):.0f}s"
        bar.set_postfix(postfix)
        if callback is not None:
            callback(e, losses[e])
        if table_callback is not None:
            table_callback(e, table[: graph.num_nodes])
        if config.time_budget is not None and elapsed >= config.time_budget:
            break
    train_seconds = time.perf_counter() - start
    bar.close()
    return EmbedResult(
        embedding=np.asarray(table)[: graph.num_nodes],
        names=graph.names,
        losses=losses[:epochs_run],
        relations_per_second=rates[:epochs_run],
        train_seconds=train_seconds,
        config=config,
    )
