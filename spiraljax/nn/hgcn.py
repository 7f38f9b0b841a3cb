r"""Hyperbolic graph convolution (HGCN, Chami, Ying, Ré & Leskovec 2019) on the hyperboloid.

The model is the paper's: points live on the hyperboloid (``spiraljax.geometry.lorentz``:
``(n, d+1)`` arrays on ⟨x, x⟩_L = −1/c, c = −K > 0). One layer ℓ maps points of curvature
K_{ℓ−1} to points of curvature K_ℓ in three steps (§4.2–4.4 of the paper):

1. **Feature transform** (hyperbolic linear map and bias, at curvature K_{ℓ−1}):

       h_i = (W ⊗ x_i) ⊕ b,   W ⊗ x = exp_o(W log_o x),   x ⊕ b = exp_x(P_{o→x}(b)),

   o the origin (1/√c, 0, …, 0); W acts on the spatial part of the tangent vector log_o x
   (time component 0), b ∈ T_o is a Euclidean parameter, P_{o→x} parallel transport.
2. **Attention-based aggregation in the tangent space of each node** (the paper's "local
   aggregation"):

       y_i = exp_{h_i}( Σ_{j ∈ N(i)} w_ij log_{h_i}(h_j) ),
       w_ij = softmax_{j ∈ N(i)}( LeakyReLU( a_r · log_o(h_i) + a_s · log_o(h_j) ) ).

   The paper's scorer is an unspecified "MLP" of log_o(h_i) ‖ log_o(h_j); here it is GAT's
   one-layer scorer (Veličković et al. 2018) — a purely linear scorer would cancel the
   receiver term in the softmax. ``aggregation="origin"`` aggregates in T_o instead,
   y_i = exp_o(Σ_j w_ij log_o h_j) (the reference code's non-local variant). Without
   attention parameters the weights are the mean, w_ij = 1/|N(i)|. A node with no
   incoming edge keeps y_i = h_i (local) or o (origin): add self-loops
   (``add_self_loops``) for the GCN convention Â = A + I.
3. **Non-linearity across curvatures**: x'_i = exp_o^{K_ℓ}( σ( log_o^{K_{ℓ−1}}(y_i) ) ).

Graphs are edge lists: edge e sends a message from ``senders[e]`` (j) to
``receivers[e]`` (i); the softmax over the neighbours of each receiver uses
``jax.ops.segment_max`` / ``segment_sum``, so memory and time are O(E·d + n·d) — a 10⁵-node
graph fits easily (``benchmarks/hgcn.py``). ``hgcn_layer_dense`` computes the same layer
from an (n, n) adjacency matrix (O(n²·d): a reference for tests, not for large graphs).

Learnable curvature: the layer takes ``curvature_in`` / ``curvature_out`` as (possibly
traced) keyword arguments and is differentiable in both; ``hgcn`` stacks layers and keeps
one curvature per layer in its params (K_ℓ = −exp(θ_ℓ), always negative).

Reference: I. Chami, R. Ying, C. Ré, J. Leskovec, *Hyperbolic Graph Convolutional Neural
Networks*, NeurIPS 2019 (arXiv:1910.12933), §4; reference code HazyResearch/hgcn
(``layers/hyp_layers.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import lorentz
from spiraljax.geometry.guards import check_curvature, is_concrete
from spiraljax.geometry.layers import Layer
from spiraljax.geometry.layers._common import _check_features
from spiraljax.geometry.layers._common import _check_float_dtype as _check_dtype

__all__ = [
    "add_self_loops",
    "hgcn",
    "hgcn_curvatures",
    "hgcn_layer",
    "hgcn_layer_dense",
    "symmetrize",
]

ArrayLike = Any
Params = dict[str, Any]

AGGREGATIONS = ("local", "origin")
LEAKY_SLOPE = 0.2  # GAT's negative slope


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------


def _check_hyperboloid_curvature(curvature: ArrayLike, name: str) -> None:
    """K < 0 (concrete values only): K > 0 is no hyperbolic space, K = 0 has no hyperboloid."""
    check_curvature(curvature, name)
    if is_concrete(curvature) and float(np.asarray(curvature)) == 0.0:
        raise ValueError(
            f"{name}=0.0: the hyperboloid needs K < 0 (⟨x, x⟩_L = −1/c has no point at c = 0)"
        )


def _layer_shapes(params: Params) -> tuple[int, int]:
    """(in_features, out_features) of layer params, after checking their keys and shapes."""
    if not isinstance(params, dict) or "weight" not in params:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"hgcn_layer params must be a dict with a 'weight' key, got {got}")
    unknown = set(params) - {"weight", "bias", "attention"}
    if unknown:
        raise ValueError(f"hgcn_layer params has unknown keys {sorted(unknown)}")
    w = params["weight"]
    if np.ndim(w) != 2:
        raise ValueError(f"weight must have shape (out, in), got {np.shape(w)}")
    d_out, d_in = np.shape(w)
    if "bias" in params and np.shape(params["bias"]) != (d_out,):
        raise ValueError(f"bias must have shape ({d_out},), got {np.shape(params['bias'])}")
    if "attention" in params and np.shape(params["attention"]) != (2, d_out):
        raise ValueError(
            f"attention must have shape (2, {d_out}) (receiver and sender rows), "
            f"got {np.shape(params['attention'])}"
        )
    return int(d_in), int(d_out)


def _check_points(x: ArrayLike, d_in: int) -> None:
    shape = np.shape(x)
    if len(shape) != 2:
        raise ValueError(
            f"x must be hyperboloid points of shape (n, in_features + 1) = (n, {d_in + 1}), "
            f"got shape {shape} (vmap over leading axes)"
        )
    if shape[1] != d_in + 1:
        hint = (
            " — these look like d-dimensional features; map them onto the hyperboloid "
            "first (lorentz.expmap0 of (0, x), or use hgcn)"
            if shape[1] == d_in
            else ""
        )
        raise ValueError(
            f"x has coordinate axis of size {shape[1]}, but the layer expects "
            f"in_features + 1 = {d_in + 1} (hyperboloid coordinates){hint}"
        )


def _check_edges(senders: ArrayLike, receivers: ArrayLike, num_nodes: int) -> None:
    s_shape, r_shape = np.shape(senders), np.shape(receivers)
    if len(s_shape) != 1 or s_shape != r_shape:
        raise ValueError(
            f"senders and receivers must be 1-D arrays of one length, got shapes "
            f"{s_shape} and {r_shape}"
        )
    for name, idx in (("senders", senders), ("receivers", receivers)):
        dtype = jnp.asarray(idx).dtype if not hasattr(idx, "dtype") else idx.dtype
        if not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(f"{name} has dtype {dtype}; node indices must be integers")
        if is_concrete(idx) and s_shape[0]:
            values = np.asarray(idx)
            lo, hi = int(values.min()), int(values.max())
            if lo < 0 or hi >= num_nodes:
                raise ValueError(
                    f"{name} has indices in [{lo}, {hi}], outside [0, {num_nodes}) "
                    f"(num_nodes = x.shape[0] = {num_nodes})"
                )


def _check_aggregation(aggregation: str) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r} must be one of {AGGREGATIONS}")


# --------------------------------------------------------------------------------------
# The three steps (shared by the sparse and the dense forms)
# --------------------------------------------------------------------------------------


def _tangent(v: jax.Array) -> jax.Array:
    """Spatial vectors (..., d) → tangent vectors at the origin (..., d+1), time 0."""
    return jnp.concatenate([jnp.zeros_like(v[..., :1]), v], axis=-1)


def _feature_transform(params: Params, x: jax.Array, k: ArrayLike) -> jax.Array:
    """h = (W ⊗ x) ⊕ b = exp_m(P_{o→m}(b)), m = exp_o(W log_o x), all at curvature k."""
    u = lorentz.logmap0(x, curvature=k)[..., 1:]
    # HIGHEST: no TF32 / bf16 passes for the matmul on GPUs.
    v = jnp.matmul(u, params["weight"].T.astype(u.dtype), precision=jax.lax.Precision.HIGHEST)
    m = lorentz.expmap0(_tangent(v), curvature=k)
    if "bias" not in params:
        return m
    return lorentz.expmap(m, _tangent(_transp0(m, params["bias"].astype(m.dtype), k)), curvature=k)


def _transp0(m: jax.Array, b: jax.Array, k: ArrayLike) -> jax.Array:
    """Spatial part of P_{o→m}((0, b)) = (0, b) + c⟨m, (0, b)⟩_L/(1 − c⟨o, m⟩_L) · (o + m).

    ``lorentz.transp`` with x = o in closed form: ⟨m, (0, b)⟩_L = m_s·b and
    1 − c⟨o, m⟩_L = 1 + √c m₀ = 1 + √(1 + c‖m_s‖²) (a sum of positives), and o has no
    spatial part, so t_s = b + c(m_s·b)/(1 + √(1 + c‖m_s‖²)) · m_s. The Lorentz functions
    read tangent vectors by their spatial part, so this is all ``expmap`` needs.
    """
    c = jnp.maximum(-jnp.asarray(k, m.dtype), lorentz.C_MIN)
    s = m[..., 1:]
    mb = jnp.sum(s * b, axis=-1, keepdims=True)
    return b + (c * mb / (1 + jnp.sqrt(1 + c * jnp.sum(s * s, axis=-1, keepdims=True)))) * s


def _node_scores(params: Params, h: jax.Array, k: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Per-node attention terms (a_r · log_o h_i, a_s · log_o h_j), each (n,)."""
    z = lorentz.logmap0(h, curvature=k)[..., 1:]
    a = params["attention"].astype(z.dtype)
    return z @ a[0], z @ a[1]


def _activate(y: jax.Array, k_in: ArrayLike, k_out: ArrayLike, activation) -> jax.Array:
    """σ^{⊗K_in,K_out}(y) = exp_o^{K_out}(σ(log_o^{K_in} y)) (σ on the spatial part)."""
    u = lorentz.logmap0(y, curvature=k_in)[..., 1:]
    return lorentz.expmap0(_tangent(activation(u)), curvature=k_out)


def _prepare(params, x, curvature_in, curvature_out, aggregation):
    d_in, _ = _layer_shapes(params)
    _check_points(x, d_in)
    _check_hyperboloid_curvature(curvature_in, "curvature_in")
    _check_hyperboloid_curvature(curvature_out, "curvature_out")
    _check_aggregation(aggregation)
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"x has non-floating dtype {x.dtype}; pass a float array")
    return x


# --------------------------------------------------------------------------------------
# Sparse layer (edge lists)
# --------------------------------------------------------------------------------------


def _hgcn_layer_init(
    key: jax.Array,
    in_features: int,
    out_features: int,
    *,
    attention: bool = True,
    use_bias: bool = True,
    dtype: Any = jnp.float32,
) -> Params:
    """Parameters of one HGCN layer (all Euclidean: optimise them with any optax optimizer).

    Returns a dict with ``weight`` (out, in), Glorot-uniform with gain √2 (as the reference
    code); ``bias`` (out,) zeros — a tangent vector at the origin — when ``use_bias``; and
    ``attention`` (2, out) zeros — row 0 scores the receiver, row 1 the sender — when
    ``attention``. Zero attention starts the layer as mean aggregation.
    """
    _check_features(in_features=in_features, out_features=out_features)
    dtype = _check_dtype(dtype)
    limit = float(np.sqrt(2.0) * np.sqrt(6.0 / (in_features + out_features)))
    params: Params = {
        "weight": jax.random.uniform(key, (out_features, in_features), dtype, -limit, limit)
    }
    if use_bias:
        params["bias"] = jnp.zeros((out_features,), dtype)
    if attention:
        params["attention"] = jnp.zeros((2, out_features), dtype)
    return params


def _segment_softmax(scores: jax.Array, receivers: jax.Array, num_nodes: int) -> jax.Array:
    """w_e = exp(s_e) / Σ_{e' → same receiver} exp(s_e'), per receiver, (E,)."""
    top = jax.ops.segment_max(scores, receivers, num_segments=num_nodes)
    # The shift only guards exp against overflow; the softmax does not depend on it.
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0))
    e = jnp.exp(scores - top[receivers])
    return e / jax.ops.segment_sum(e, receivers, num_segments=num_nodes)[receivers]


def _edge_weights(params, h, senders, receivers, k):
    n = h.shape[0]
    if "attention" in params:
        p, q = _node_scores(params, h, k)
        scores = jax.nn.leaky_relu(p[receivers] + q[senders], LEAKY_SLOPE)
        return _segment_softmax(scores, receivers, n)
    ones = jnp.ones(receivers.shape, h.dtype)
    degree = jax.ops.segment_sum(ones, receivers, num_segments=n)
    return ones / degree[receivers]


def _hgcn_layer_apply(
    params: Params,
    x: ArrayLike,
    senders: ArrayLike,
    receivers: ArrayLike,
    *,
    curvature_in: ArrayLike = -1.0,
    curvature_out: ArrayLike = -1.0,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    aggregation: str = "local",
) -> jax.Array:
    r"""One HGCN layer on an edge list (module docstring, steps 1–3).

    Args:
      params: from ``hgcn_layer.init`` (``weight``, optional ``bias``, ``attention``).
      x: hyperboloid points ``(n, in_features + 1)`` of curvature ``curvature_in``.
      senders, receivers: int arrays ``(E,)``; edge e carries h_{senders[e]} to node
        receivers[e]. Duplicate edges count with their multiplicity.
      curvature_in, curvature_out: K_{ℓ−1} < 0 and K_ℓ < 0, floats or (traced) scalars.
      activation: σ, applied to the spatial part of log_o(y) (identity: ``lambda u: u``).
      aggregation: ``"local"`` (in T_{h_i}, the paper's) or ``"origin"`` (in T_o).

    Returns:
      Points ``(n, out_features + 1)`` of curvature ``curvature_out``, dtype of ``x``.

    Raises:
      ValueError: params of the wrong shapes, ``x`` not ``(n, in_features + 1)``, senders and
      receivers of different shapes or non-integer, indices outside [0, n) (checked when
      they are concrete), K ≥ 0 (concrete), an unknown ``aggregation``.
    """
    x = _prepare(params, x, curvature_in, curvature_out, aggregation)
    n = x.shape[0]
    _check_edges(senders, receivers, n)
    senders = jnp.asarray(senders)
    receivers = jnp.asarray(receivers)
    k_in = curvature_in
    h = _feature_transform(params, x, k_in)
    w = _edge_weights(params, h, senders, receivers, k_in)[:, None].astype(h.dtype)
    if aggregation == "local":
        v = lorentz.logmap(h[receivers], h[senders], curvature=k_in)
        agg = jax.ops.segment_sum(w * v, receivers, num_segments=n)
        y = lorentz.expmap(h, agg, curvature=k_in)
    else:
        z = lorentz.logmap0(h, curvature=k_in)
        y = lorentz.expmap0(
            jax.ops.segment_sum(w * z[senders], receivers, num_segments=n), curvature=k_in
        )
    return _activate(y, k_in, curvature_out, activation).astype(x.dtype)


#: One hyperbolic graph convolution on an edge list (Chami et al. 2019, §4).
hgcn_layer = Layer(_hgcn_layer_init, _hgcn_layer_apply)


# --------------------------------------------------------------------------------------
# Dense reference
# --------------------------------------------------------------------------------------


def hgcn_layer_dense(
    params: Params,
    x: ArrayLike,
    adjacency: ArrayLike,
    *,
    curvature_in: ArrayLike = -1.0,
    curvature_out: ArrayLike = -1.0,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    aggregation: str = "local",
) -> jax.Array:
    r"""``hgcn_layer`` from an adjacency matrix: all (i, j) pairs at once, O(n²·d) memory.

    ``adjacency[i, j]`` is the number of edges j → i (0/1, bools, or counts for multi-edges),
    so ``hgcn_layer_dense(p, x, A)`` equals ``hgcn_layer(p, x, senders, receivers)`` for the
    edge list of A. The attention softmax is the masked form
    w_ij = A_ij exp(s_ij) / Σ_j' A_ij' exp(s_ij'); the mean weights are A_ij / Σ_j' A_ij'.
    A reference for tests and small graphs.

    Args:
      adjacency: ``(n, n)``, n = ``x.shape[0]``. Other arguments as ``hgcn_layer``.
    """
    x = _prepare(params, x, curvature_in, curvature_out, aggregation)
    n = x.shape[0]
    if np.shape(adjacency) != (n, n):
        raise ValueError(f"adjacency must have shape ({n}, {n}), got {np.shape(adjacency)}")
    k_in = curvature_in
    h = _feature_transform(params, x, k_in)
    a = jnp.asarray(adjacency).astype(h.dtype)
    if "attention" in params:
        p, q = _node_scores(params, h, k_in)
        s = jax.nn.leaky_relu(p[:, None] + q[None, :], LEAKY_SLOPE)
        s = jnp.where(a > 0, s, -jnp.inf)
        top = jax.lax.stop_gradient(jnp.max(s, axis=1, keepdims=True))
        e = a * jnp.exp(s - jnp.where(jnp.isfinite(top), top, 0))
    else:
        e = a
    total = jnp.sum(e, axis=1, keepdims=True)
    w = e / jnp.where(total > 0, total, 1)
    if aggregation == "local":
        v = lorentz.logmap(h[:, None, :], h[None, :, :], curvature=k_in)  # (n, n, d+1)
        y = lorentz.expmap(h, jnp.sum(w[..., None] * v, axis=1), curvature=k_in)
    else:
        z = lorentz.logmap0(h, curvature=k_in)
        y = lorentz.expmap0(w @ z, curvature=k_in)
    return _activate(y, k_in, curvature_out, activation).astype(x.dtype)


# --------------------------------------------------------------------------------------
# A stack of layers with learnable curvatures
# --------------------------------------------------------------------------------------


def _hgcn_init(
    key: jax.Array,
    features: Sequence[int],
    *,
    curvature: float = -1.0,
    attention: bool = True,
    use_bias: bool = True,
    dtype: Any = jnp.float32,
) -> Params:
    """Parameters of an HGCN with layer widths ``features = (d₀, d₁, …, d_L)``.

    Returns ``{"layers": (params₁, …, params_L), "log_c": (L + 1,)}``: the layers' params
    (``hgcn_layer.init``) and θ with K_ℓ = −exp(θ_ℓ), all K_ℓ starting at ``curvature``.
    Freeze the curvatures by masking ``log_c`` out of the optimizer (``optax.masked``).
    """
    features = tuple(features)
    if len(features) < 2:
        raise ValueError(f"features={features!r} needs at least (d_in, d_out)")
    _check_features(**{f"features[{i}]": f for i, f in enumerate(features)})
    check_curvature(curvature)
    if not float(curvature) < 0:
        raise ValueError(f"curvature={curvature} must be < 0 (the hyperboloid)")
    dtype = _check_dtype(dtype)
    keys = jax.random.split(key, len(features) - 1)
    layers = tuple(
        _hgcn_layer_init(k, a, b, attention=attention, use_bias=use_bias, dtype=dtype)
        for k, a, b in zip(keys, features[:-1], features[1:], strict=True)
    )
    log_c = jnp.full((len(features),), np.log(-float(curvature)), dtype)
    return {"layers": layers, "log_c": log_c}


def hgcn_curvatures(params: Params) -> jax.Array:
    """The curvatures (K₀, …, K_L) = −exp(θ) of ``hgcn`` params, shape (L + 1,)."""
    return -jnp.exp(params["log_c"])


def _hgcn_apply(
    params: Params,
    x: ArrayLike,
    senders: ArrayLike,
    receivers: ArrayLike,
    *,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    aggregation: str = "local",
) -> jax.Array:
    """An HGCN encoder: Euclidean features ``(n, d₀)`` → points ``(n, d_L + 1)`` of K_L.

    x⁰ = exp_o^{K₀}((0, x)) (the paper's §4.1), then layer ℓ = 1…L maps K_{ℓ−1} → K_ℓ with
    ``hgcn_layer``; ``activation`` between layers, none after the last (its output is
    log-mapped with K_{L−1} and exp-mapped with K_L). K_L is ``hgcn_curvatures(params)[-1]``.
    """
    if not isinstance(params, dict) or set(params) != {"layers", "log_c"}:
        raise ValueError("hgcn params must be a dict with keys 'layers' and 'log_c'")
    layers = params["layers"]
    if np.shape(params["log_c"]) != (len(layers) + 1,):
        raise ValueError(
            f"log_c must have shape ({len(layers) + 1},) for {len(layers)} layers, "
            f"got {np.shape(params['log_c'])}"
        )
    x = jnp.asarray(x)
    d0 = _layer_shapes(layers[0])[0]
    if x.ndim != 2 or x.shape[1] != d0:
        raise ValueError(f"x must be Euclidean features of shape (n, {d0}), got {x.shape}")
    ks = hgcn_curvatures(params).astype(x.dtype)
    h = lorentz.expmap0(_tangent(x), curvature=ks[0])
    for i, layer in enumerate(layers):
        act = activation if i < len(layers) - 1 else (lambda u: u)
        h = _hgcn_layer_apply(
            layer,
            h,
            senders,
            receivers,
            curvature_in=ks[i],
            curvature_out=ks[i + 1],
            activation=act,
            aggregation=aggregation,
        )
    return h


#: An HGCN encoder: a stack of ``hgcn_layer`` with one learnable curvature per layer.
hgcn = Layer(_hgcn_init, _hgcn_apply)


# --------------------------------------------------------------------------------------
# Edge-list helpers
# --------------------------------------------------------------------------------------


def symmetrize(senders: ArrayLike, receivers: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Both directions of every edge: (s ‖ r, r ‖ s), shape (2E,) each."""
    senders, receivers = jnp.asarray(senders), jnp.asarray(receivers)
    return jnp.concatenate([senders, receivers]), jnp.concatenate([receivers, senders])


def add_self_loops(
    senders: ArrayLike, receivers: ArrayLike, num_nodes: int
) -> tuple[jax.Array, jax.Array]:
    """Append the edges i → i for i = 0…num_nodes − 1 (GCN's Â = A + I)."""
    _check_features(num_nodes=num_nodes)
    senders, receivers = jnp.asarray(senders), jnp.asarray(receivers)
    loops = jnp.arange(num_nodes, dtype=senders.dtype)
    return jnp.concatenate([senders, loops]), jnp.concatenate([receivers, loops])
