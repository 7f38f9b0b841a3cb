r"""Node embeddings from an HGCN encoder (Chami et al. 2019), trained on a hierarchy's edges.

Model: every node i has a learned input vector e_i ∈ ℝ^d, read as a tangent vector at the
origin (the HGCN's Euclidean input features; no one-hot features); the encoder
``spiraljax.nn.hgcn`` — ``layers`` hyperbolic graph convolutions of width d with attention,
local aggregation and one learnable curvature per layer — maps them to hyperboloid points
z_i of curvature K_L, passing messages along the training edges in both directions plus
self-loops (Â = A + I). The loss is that of the Poincaré embeddings (Nickel & Kiela 2017,
``spiraljax.embedding.trainer``): for a training pair (u, v) and negatives v'₁…v'_k drawn
uniformly among the nodes that are neither u nor a training neighbour of u,

    L(u, v) = −log( exp(−d(z_u, z_v)) / (exp(−d(z_u, z_v)) + Σ_j exp(−d(z_u, z_v'_j))) ),

with d the hyperboloid distance at K_L, so the encoder and the free embeddings of the
benchmark (``benchmarks/link_prediction.py``) see the same objective. Every parameter —
input vectors, layer weights, tangent biases, attention vectors, log-curvatures — is
Euclidean, so plain Adam (``optax.adam``) trains them; each step runs the encoder over the
whole graph (full-batch message passing) and the loss over one batch of pairs.

The edge list is padded to ``edge_capacity`` with edges between a dummy node (an extra row
of the input table that no pair touches), so graphs of one node count and a common
capacity — the training fractions of one split — share one compiled step.

Reference: I. Chami, R. Ying, C. Ré, J. Leskovec, *Hyperbolic Graph Convolutional Neural
Networks*, NeurIPS 2019 (link prediction, §5); the reference code decodes with a
Fermi–Dirac function of d² and a binary cross entropy instead of this softmax loss.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from spiraljax.data import EdgeList
from spiraljax.embedding.evaluation import x64_context
from spiraljax.embedding.trainer import _sample_negatives, _tables, nickel_kiela_loss
from spiraljax.nn import add_self_loops, hgcn, hgcn_curvatures, symmetrize

__all__ = ["HGCNConfig", "HGCNResult", "train_hgcn"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "identity": lambda u: u,
}


@dataclasses.dataclass(frozen=True)
class HGCNConfig:
    """Settings of ``train_hgcn``.

    Attributes:
      dim: width d of the input vectors and of every layer (points have d + 1 coordinates).
      layers: number of HGCN layers.
      epochs: passes over the training pairs.
      lr: Adam learning rate.
      negatives: negatives per pair.
      batch_size: pairs per step (the encoder always runs on the whole graph).
      seed: PRNG seed (initialisation, pair order, negatives).
      curvature: initial K < 0 of every layer.
      learn_curvature: train the curvatures (else they stay at ``curvature``).
      attention: attention-based aggregation (else the neighbours' mean).
      aggregation: ``"local"`` (tangent space at each node, the paper's) or ``"origin"``.
      activation: ``"relu"`` (the paper's), ``"tanh"`` or ``"identity"``, between layers.
      directed: pass messages only from ancestors to descendants (default: both ways).
      init_scale: standard deviation of the initial input vectors.
      dtype: ``"float64"`` or ``"float32"``.
      time_budget: stop after the first epoch ending past this many seconds (None: all).
    """

    dim: int = 10
    layers: int = 2
    epochs: int = 100
    lr: float = 1e-2
    negatives: int = 50
    batch_size: int = 1024
    seed: int = 0
    curvature: float = -1.0
    learn_curvature: bool = True
    attention: bool = True
    aggregation: str = "local"
    activation: str = "relu"
    directed: bool = False
    init_scale: float = 1e-2
    dtype: str = "float64"
    time_budget: float | None = None

    def __post_init__(self) -> None:
        for name in ("dim", "layers", "epochs", "negatives", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer ≥ 1")
        for name in ("lr", "init_scale"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}={v!r} must be a finite number > 0")
        if not (math.isfinite(self.curvature) and self.curvature < 0):
            raise ValueError(f"curvature={self.curvature!r} must be finite and < 0")
        if self.aggregation not in ("local", "origin"):
            raise ValueError(f"aggregation={self.aggregation!r} must be 'local' or 'origin'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} must be one of {list(ACTIVATIONS)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype={self.dtype!r} must be 'float32' or 'float64'")
        if self.time_budget is not None and not (
            isinstance(self.time_budget, int | float) and self.time_budget > 0
        ):
            raise ValueError(f"time_budget={self.time_budget!r} must be None or a number > 0")


@dataclasses.dataclass(frozen=True)
class HGCNResult:
    """Output of ``train_hgcn``.

    Attributes:
      embedding: ``(n, dim + 1)`` hyperboloid points of curvature ``curvature``.
      curvature: the last layer's K_L (learned).
      curvatures: (K₀, …, K_L).
      losses: mean training loss of each epoch run.
      train_seconds: wall time of all epochs, compilation included.
      params: the trained parameters (``"embedding"`` (n + 1, dim) with the dummy row last,
        ``"encoder"`` as ``spiraljax.nn.hgcn``).
      config: the settings used.
    """

    embedding: np.ndarray
    curvature: float
    curvatures: np.ndarray
    losses: np.ndarray
    train_seconds: float
    params: Any
    config: HGCNConfig


def message_edges(
    graph: EdgeList, capacity: int | None = None, *, directed: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Senders and receivers of the encoder: both directions of every edge (``directed``:
    ancestor → descendant only), self-loops, padded with dummy-node edges (node
    ``num_nodes``) to ``capacity`` (default: the next power of two)."""
    n = graph.num_nodes
    if directed:
        s, r = graph.edges[:, 1], graph.edges[:, 0]
    else:
        s, r = symmetrize(graph.edges[:, 0], graph.edges[:, 1])
    s, r = (np.asarray(a, np.int32) for a in add_self_loops(s, r, n))
    size = len(s)
    capacity = 1 << max(size - 1, 1).bit_length() if capacity is None else capacity
    if capacity < size:
        raise ValueError(f"edge_capacity={capacity} is below the {size} message edges needed")
    pad = np.full(capacity - size, n, np.int32)
    return np.concatenate([s, pad]), np.concatenate([r, pad])


@functools.lru_cache(maxsize=8)
def _step_function(activation: str, aggregation: str, lr: float, learn_curvature: bool):
    """A jitted Adam step on the HGCN + softmax loss; shapes come from the arguments."""
    optimizer = optax.adam(lr)
    act = ACTIVATIONS[activation]

    def loss_fn(params, senders, receivers, pairs, negs, neg_mask, pair_mask):
        z = hgcn.apply(
            params["encoder"],
            params["embedding"],
            senders,
            receivers,
            activation=act,
            aggregation=aggregation,
        )
        k = hgcn_curvatures(params["encoder"])[-1]
        return nickel_kiela_loss(
            z, pairs, negs, neg_mask, pair_mask, curvature=k, manifold="lorentz"
        )

    def step(params, opt_state, senders, receivers, pairs, negs, neg_mask, pair_mask):
        loss, grads = jax.value_and_grad(loss_fn)(
            params, senders, receivers, pairs, negs, neg_mask, pair_mask
        )
        if not learn_curvature:
            grads["encoder"]["log_c"] = jnp.zeros_like(grads["encoder"]["log_c"])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def embed(params, senders, receivers):
        return hgcn.apply(
            params["encoder"],
            params["embedding"],
            senders,
            receivers,
            activation=act,
            aggregation=aggregation,
        )

    return optimizer, jax.jit(step, donate_argnums=(0, 1)), jax.jit(embed)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _epoch_batches(key, edges, tables, batch_size, num_batches, negatives):
    perm_key, neg_key = jax.random.split(key)
    m = edges.shape[0]
    order = jax.random.permutation(perm_key, m)
    pad = num_batches * batch_size - m
    order = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)])
    pairs = edges[order].reshape(num_batches, batch_size, 2)
    pair_mask = (jnp.arange(num_batches * batch_size) < m).reshape(num_batches, batch_size)
    negs, neg_mask = _sample_negatives(neg_key, pairs[..., 0], tables, negatives, False)
    return pairs, pair_mask, negs, neg_mask


def train_hgcn(
    graph: EdgeList,
    config: HGCNConfig = HGCNConfig(),
    *,
    edge_capacity: int | None = None,
    progress: bool = False,
    callback: Callable[[int, float], Any] | None = None,
    checkpoint: Callable[[int, np.ndarray, float], Any] | None = None,
    checkpoint_every: int = 1,
) -> HGCNResult:
    """Train an HGCN encoder with learned input vectors on ``graph`` (module docstring).

    Args:
      graph: training pairs (child, ancestor), e.g. ``ClosureSplit.train_graph()``.
      config: settings.
      edge_capacity: pad the message edges to this many (≥ 2·edges + nodes); runs with one
        node count and capacity reuse one compiled step.
      progress: show a tqdm bar.
      callback: ``callback(epoch, loss)`` after every epoch.
      checkpoint: ``checkpoint(epoch, embedding, curvature)`` after every
        ``checkpoint_every``-th epoch and the last one, with the current ``(n, dim + 1)``
        points (NumPy) and K_L — e.g. to pick the epoch by a validation score.
    """
    if (
        isinstance(checkpoint_every, bool)
        or not isinstance(checkpoint_every, int)
        or checkpoint_every < 1
    ):
        raise ValueError(f"checkpoint_every={checkpoint_every!r} must be an integer ≥ 1")
    with x64_context(config.dtype):
        return _train(
            graph, config, edge_capacity, progress, callback, checkpoint, checkpoint_every
        )


def _train(
    graph, config, edge_capacity, progress, callback, checkpoint=None, checkpoint_every=1
) -> HGCNResult:
    from tqdm import tqdm

    dtype = jnp.dtype(config.dtype)
    n, d = graph.num_nodes, config.dim
    tables = _tables(graph)
    senders, receivers = (
        jnp.asarray(a) for a in message_edges(graph, edge_capacity, directed=config.directed)
    )
    optimizer, step, embed = _step_function(
        config.activation, config.aggregation, float(config.lr), bool(config.learn_curvature)
    )
    key = jax.random.key(config.seed)
    key, k_emb, k_enc = jax.random.split(key, 3)
    params = {
        # n + 1 rows: the last is the dummy node of the padding edges.
        "embedding": config.init_scale * jax.random.normal(k_emb, (n + 1, d), dtype),
        "encoder": hgcn.init(
            k_enc,
            (d,) * (config.layers + 1),
            curvature=config.curvature,
            attention=config.attention,
            dtype=dtype,
        ),
    }
    opt_state = optimizer.init(params)
    m = graph.num_edges
    num_batches = -(-m // config.batch_size)
    losses = []
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc="hgcn", unit="epoch", disable=not progress)
    for epoch in bar:
        key, k_epoch = jax.random.split(key)
        pairs, pair_mask, negs, neg_mask = _epoch_batches(
            k_epoch, tables.edges, tables, config.batch_size, num_batches, config.negatives
        )
        total = 0.0
        for b in range(num_batches):
            params, opt_state, loss = step(
                params,
                opt_state,
                senders,
                receivers,
                pairs[b],
                negs[b],
                neg_mask[b],
                pair_mask[b],
            )
            total += float(loss) * float(pair_mask[b].sum())
        losses.append(total / m)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if callback is not None:
            callback(epoch, losses[-1])
        out_of_time = (
            config.time_budget is not None and time.perf_counter() - start >= config.time_budget
        )
        last = out_of_time or epoch == config.epochs - 1
        if checkpoint is not None and (last or (epoch + 1) % checkpoint_every == 0):
            z = np.asarray(embed(params, senders, receivers)[:n])
            checkpoint(epoch, z, float(-jnp.exp(params["encoder"]["log_c"][-1])))
        if out_of_time:
            break
    z = embed(params, senders, receivers)
    ks = np.asarray(hgcn_curvatures(params["encoder"]), np.float64)
    seconds = time.perf_counter() - start
    bar.close()
    return HGCNResult(
        embedding=np.asarray(z[:n]),
        curvature=float(ks[-1]),
        curvatures=ks,
        losses=np.asarray(losses),
        train_seconds=seconds,
        params=params,
        config=config,
    )
