"""XLA (pure ``lax``) Rank-K selection: the CPU path and the reference for every backend.

All kinds reduce to "the k largest *kind keys*, ties to the lower index" (see
``keys.kind_key``): Top-K on the signed key, Bottom-K on its complement ``~key``, and
Mid-K as ranks ``[s, s + k)`` of the ascending order with ``s = ⌊(n − k)/2⌋``.

Why ``lax.top_k`` on a float32 *carrier* on CPU: the XLA CPU TopK runtime
(``std::partial_sort`` over indices) compares float32 through total-order integer keys
with ties to the lower index, at about n + O(k log k log(n/k)) comparisons; on int32 (and
on 16-bit floats and float64) ``lax.top_k`` lowers to a full stable sort, tens of times
slower. ``keys.float32_carrier`` turns any int32 key into a float32 with the same total
order, so every ≤32-bit dtype takes the fast path. Elsewhere (GPU, TPU) the int32 key goes
to ``lax.top_k`` directly, which is exact (stable sort or RAFT with ties handled by the
integer key) though not fast — the GPU fast path is the Pallas kernel.

Mid-K on CPU (``_mid_cpu``). Ranks ``[s, s + k)`` with ``s ≈ n/2`` would need
``top_k(·, s + k)``: a partial sort of half the row, as slow as a full sort (~100× a
``top_k(x, k)``). Instead:

1. *Rank search by counting passes* (``_search_rank``): a ``while_loop`` whose every step
   is one fused pass ``#{key ≤ m}`` over the row (a cheap reduction, no comparison sort).
   Probes are chosen by safeguarded interpolation in the value coordinate (two first
   probes from a strided sample of ``MID_SAMPLE`` keys), about 4–7 passes for smooth data.
   It stops, per row, with a lower bound ``(B, J)`` in the composite order
   ``(key, index)`` with ``0 ≤ s − #{< (B, J)} ≤ W`` and a key ``U`` with
   ``#{key ≤ U} ≥ s + k`` (``W = MID_SLACK``). If rank s lies inside a tie group longer
   than ``W``, it bisects the index inside that group, so ties cost ``log2 n`` passes,
   never a sort.
2. *One* ``top_k`` with ``k + W`` on the shifted, complemented key
   ``g = MAX − (key − B)`` of the entries in ``[(B, J), U]`` (all others get ``MIN``),
   then the window at offset ``s − #{< (B, J)}``. ``top_k`` breaks ties by the lower
   index, so the order is exact. Masking *both* sides matters: only the ~k + 2W entries
   near the band ever enter ``top_k``'s heap (masking below only made the final step
   ~2× slower, measured). ``MIN`` cannot tie with a kept key unless the kept keys span
   all 2³² values (``B = MIN`` with ``J > 0`` and ``U = MAX``); that case takes the
   reference path under ``lax.cond``.

Rows are processed in chunks of ~``MID_CHUNK`` elements (``lax.map``) so the counting
passes re-read a cache-resident block instead of streaming the batch from memory (on
64×65536 this was 5× faster than whole-batch passes). float64 keeps the stable sort.

Bottom-K on float32 is ``top_k`` on the bit pattern of ``−x`` (which *is* the carrier of
``~key`` for every non-NaN) with NaNs canonicalised in the same fused pass.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from spiraljax.kernels.keys import (
    INT32_MAX,
    INT32_MIN,
    float32_carrier,
    key_range,
    kind_key,
    signed_key,
)

#: Slack of the Mid-K bisection: stop once rank s is at most this many ranks above the
#: lower bound; the final ``top_k`` then selects ``k + MID_SLACK`` entries.
MID_SLACK = 64
#: Elements per ``lax.map`` chunk of rows in the Mid-K path (≈ 1 MiB of keys).
MID_CHUNK = 1 << 18
#: Sample size for the first two probes of the Mid-K search (rows with n ≥ 4 × this).
MID_SAMPLE = 256


def _top_indices(key, k: int):
    """Indices of the k largest int keys along the last axis, ties to the lower index."""
    if key.dtype == jnp.int32:

        def cpu(key):
            return lax.top_k(float32_carrier(key), k)[1]

        def other(key):
            return lax.top_k(key, k)[1]

        return lax.platform_dependent(key, cpu=cpu, default=other)
    # int64 keys (float64 input): a stable sort, which is what lax.top_k does anyway.
    iota = lax.broadcasted_iota(jnp.int32, key.shape, key.ndim - 1)
    _, idx = lax.sort((~key, iota), dimension=key.ndim - 1, num_keys=1, is_stable=True)
    return idx[..., :k]


def _mid_reference(x, k: int):
    """Mid-K as ranks ``[s, s + k)`` of ``top_k(~key, s + k)`` (exact, slow for s ≈ n/2)."""
    n = x.shape[-1]
    s = (n - k) // 2
    return _top_indices(kind_key(x, "mid"), s + k)[..., s:]


def _count_below(key, iota, pk, pj):
    """Per row ``#{i : (key[i], i) < (pk, pj)}`` (composite order), int32."""
    below = (key < pk[..., None]) | ((key == pk[..., None]) & (iota < pj[..., None]))
    return jnp.sum(below, axis=-1, dtype=jnp.int32)


def _key_value(key, dtype):
    """float32 coordinate of an int32 key for interpolation (monotone in the key).

    Floats: the value itself (NaN keys give NaN, which callers treat as "no estimate");
    integers: the key.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return float32_carrier(key)
    if dtype.itemsize == 2:  # 16-bit float keys are sign-extended 16-bit patterns
        bits = jnp.where(key < 0, key ^ np.int32(0x7FFF), key).astype(jnp.int16)
        return lax.bitcast_convert_type(bits, dtype).astype(jnp.float32)
    return key.astype(jnp.float32)


def _value_key(v, dtype):
    """Inverse of ``_key_value`` up to rounding (callers clamp the result)."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return signed_key(v)
    if dtype.itemsize == 2:
        return signed_key(v.astype(dtype))
    v = jnp.clip(v, np.float32(-(2.0**31)), np.float32(2.0**31 - 128.0))
    return jnp.where(v == v, v, 0.0).astype(jnp.int32)


def _search_rank(key, target, slack: int, upper=None, *, dtype, first=()):
    """Rank brackets by counting passes: the core of the CPU Mid-K.

    ``key`` (..., n) int32; ``target`` (...,) int32 ranks in ``[0, n)``; ``upper``
    (optional, (...,) int32 in ``(target, n]``). Finds, per row,

    * a lower bound ``(B, J)`` in the composite order ``(key, index)`` with
      ``0 ≤ target − c ≤ slack``, ``c = #{(key, i) < (B, J)}``;
    * if ``upper`` is given, a key ``U`` with ``#{key ≤ U} ≥ upper``, within ``slack``
      of it unless a tie group at rank ``upper − 1`` prevents that (``U = MAX``
      otherwise).

    Each step probes one key ``m`` with one counting pass ``#{key ≤ m}`` and narrows the
    brackets of rank ``target`` (``[lo, hi]``) and of rank ``upper`` (``[ul, U]``); once the
    key bracket of ``target`` is a single key (a tie group longer than ``slack``), it
    bisects the index inside that group (composite counts ``#{< (key, j)}``).

    Probe choice (a safeguarded regula falsi): the keys ``first`` (per-row arrays, e.g.
    estimates from a sample) are probed first; then steps 0, 2 (mod 4) interpolate the
    counts linearly in the *value* (float ``dtype``) or key coordinate, aiming
    ``slack/2`` inside the wanted range; step 1 halves the value range, step 3 the key
    range. Plain key bisection wastes ~25 passes on an interval around 0 (it walks down
    through the exponents of tiny floats that hold no data); interpolation needs about 5
    passes for smooth densities, and the key bisection every fourth step bounds the worst
    case at 4 × (32 + log2 n) passes per bound.

    Returns ``(B, J, c, U, steps)``.
    """
    if key.dtype != jnp.int32 or np.dtype(dtype).itemsize > 4:
        raise ValueError(f"dtype={np.dtype(dtype)}: the rank search needs int32 keys")
    n = key.shape[-1]
    shape = key.shape[:-1]
    iota = lax.broadcasted_iota(jnp.int32, key.shape, key.ndim - 1)
    full = lambda v: jnp.full(shape, v, jnp.int32)  # noqa: E731
    want_upper = upper is not None
    upper = full(n) if upper is None else upper

    def lower_done(st):
        return target - st["c_lo"] <= slack

    def upper_done(st):
        if not want_upper:
            return jnp.ones(shape, bool)
        return (st["c_U"] - upper <= slack) | (st["ul"] >= st["U"])

    def live_rows(st):
        return ~(lower_done(st) & upper_done(st))

    def probe(lo, hi, c_lo, c_hi, aim, it):
        """A key in [lo, hi) (requires lo < hi) aimed at rank ``aim``."""
        span = lax.bitcast_convert_type(hi - lo, jnp.uint32) >> np.uint32(1)
        mid = lo + lax.bitcast_convert_type(span, jnp.int32)
        lv, hv = _key_value(lo, dtype), _key_value(hi, dtype)
        den = jnp.maximum(c_hi - c_lo, 1).astype(jnp.float32)
        frac = (aim.astype(jnp.float32) - c_lo.astype(jnp.float32)) / den
        frac = jnp.where(it % 2 == 0, jnp.clip(frac, 0.0, 1.0), 0.5)
        v = lv + frac * (hv - lv)
        ok = (v == v) & (jnp.abs(v) < np.inf) & (it % 4 != 3)
        return jnp.where(ok, jnp.clip(_value_key(v, dtype), lo, hi - 1), mid)

    def body(st):
        it = st["it"]
        live = live_rows(st)
        low = ~lower_done(st)
        phase_key = st["lo"] < st["hi"]
        m_low = probe(st["lo"], st["hi"], st["c_lo"], st["c_hi"], target - slack // 2, it)
        m_up = probe(st["ul"], st["U"], st["c_ul"], st["c_U"], upper + slack // 2, it)
        m_up = jnp.where(st["ul"] < st["U"], m_up, st["U"])
        m = jnp.where(low, m_low, m_up)
        for i, f in enumerate(first):
            m = jnp.where(it == i, f, m)
        index_step = low & ~phase_key  # bisect the index inside the tie group of `lo`
        jm = (st["jl"] + st["jh"] + 1) >> 1
        pk = jnp.where(index_step, st["lo"], m)
        pj = jnp.where(index_step, jm, n)
        # the composite compare (with the index) only once some row is inside a tie group
        c = lax.cond(
            jnp.any(index_step & live),
            lambda: _count_below(key, iota, pk, pj),
            lambda: jnp.sum(key <= pk[..., None], axis=-1, dtype=jnp.int32),
        )
        key_step = live & ~index_step
        idx_step = live & index_step
        le = c <= target
        new = dict(st)
        new["lo"] = jnp.where(key_step & le & (m >= st["lo"]), m + 1, st["lo"])
        new["c_lo"] = jnp.where((key_step & le & (m >= st["lo"])) | (idx_step & le), c, st["c_lo"])
        down = key_step & ~le & (m < st["hi"])
        new["hi"] = jnp.where(down, m, st["hi"])
        new["c_hi"] = jnp.where(down, c, st["c_hi"])
        new["jl"] = jnp.where(idx_step & le, jm, st["jl"])
        new["jh"] = jnp.where(idx_step & ~le, jm - 1, st["jh"])
        if want_upper:
            u_down = key_step & (c >= upper) & (m < st["U"])
            u_up = key_step & (c < upper) & (m >= st["ul"])
            new["U"] = jnp.where(u_down, m, st["U"])
            new["c_U"] = jnp.where(u_down, c, st["c_U"])
            new["ul"] = jnp.where(u_up, m + 1, st["ul"])
            new["c_ul"] = jnp.where(u_up, c, st["c_ul"])
        new["it"] = it + 1
        return new

    kmin, kmax = key_range(dtype)  # 16-bit float keys span 2¹⁶ values only
    st = dict(
        lo=full(kmin), hi=full(kmax), c_lo=full(0), c_hi=full(n),
        jl=full(0), jh=full(n - 1),
        ul=full(kmin), U=full(kmax), c_ul=full(0), c_U=full(n),
        it=jnp.int32(0),
    )  # fmt: skip
    st = lax.while_loop(lambda st: jnp.any(live_rows(st)), body, st)
    return st["lo"], st["jl"], st["c_lo"], st["U"], st["it"]


def _sample_probes(key, s: int, k: int, dtype):
    """Two first probes for the Mid-K search from a strided sample of ``MID_SAMPLE`` keys.

    Keys near the sample's ranks ``(s, s + k)·m/n ∓ 2`` binomial standard deviations: the
    full-row counts at these two probes usually bracket ranks ``s … s + k`` already, so
    interpolation starts from a narrow interval (saving the ~3 passes it needs to get
    there from the whole key range). Only speed depends on them, never the result.
    """
    n = key.shape[-1]
    stride = n // MID_SAMPLE
    sample = key[..., : stride * MID_SAMPLE : stride]
    m = sample.shape[-1]
    sd = 0.5 * np.sqrt(m)
    slack = max(1, int(sd / 4))
    r1 = int(np.clip(np.floor(s * m / n - 2 * sd), 0, m - 1))
    r2 = int(np.clip(np.ceil((s + k) * m / n + 2 * sd), r1 + 1, m))
    shape = key.shape[:-1]
    lo, _, _, hi, _ = _search_rank(
        sample, jnp.full(shape, r1, jnp.int32), slack, jnp.full(shape, r2, jnp.int32),
        dtype=dtype,
    )  # fmt: skip
    return (jnp.maximum(lo, INT32_MIN + 1) - 1, hi)


def _mid_rows(x, k: int):
    """Mid-K of rows ``x`` (r, n): ``(indices (r, k), clash (r,))``; see module doc.

    ``clash`` flags the one case the shifted key cannot separate from the sentinel; the
    caller then takes the exact reference path for the whole batch.
    """
    n = x.shape[-1]
    s = (n - k) // 2
    key = signed_key(x)
    target = jnp.full(key.shape[:-1], s, jnp.int32)
    first = _sample_probes(key, s, k, x.dtype) if n >= 4 * MID_SAMPLE else ()
    b, j, c, u, _ = _search_rank(key, target, MID_SLACK, target + k, dtype=x.dtype, first=first)
    iota = lax.broadcasted_iota(jnp.int32, key.shape, key.ndim - 1)
    bb, jj, uu = b[..., None], j[..., None], u[..., None]
    keep = ((key > bb) | ((key == bb) & (iota >= jj))) & (key <= uu)
    g = jnp.where(keep, INT32_MAX - (key - bb), INT32_MIN)
    top = lax.top_k(float32_carrier(g), min(k + MID_SLACK, n))[1]
    pos = (s - c)[..., None] + jnp.arange(k, dtype=jnp.int32)
    idx = jnp.take_along_axis(top, pos, axis=-1)
    # kept keys span all 2³² values only if B = MIN (with J > 0) and U = MAX: then the MIN
    # sentinel could tie with a kept key.
    return idx, (b == INT32_MIN) & (j > 0) & (u == INT32_MAX)


def _mid_cpu(x, k: int):
    """Mid-K indices on CPU: per-row rank bisection + one ``top_k(k + W)``.

    Rows are processed in chunks of about ``MID_CHUNK`` elements (``lax.map``) so that the
    counting passes of the bisection re-read a cache-resident block instead of streaming
    the whole batch from memory on every pass.
    """
    n = x.shape[-1]
    s = (n - k) // 2
    if s <= MID_SLACK or x.ndim != 2:  # top_k(s + k) is no larger than the final step
        return _mid_reference(x, k)
    rows = x.shape[0]
    chunk = max(1, min(rows, MID_CHUNK // n))
    q = rows // chunk
    parts = []
    if q > 1:
        body = x[: q * chunk].reshape(q, chunk, n)
        idx, clash = lax.map(lambda r: _mid_rows(r, k), body)
        parts.append((idx.reshape(q * chunk, k), clash.reshape(q * chunk)))
    if q <= 1 or q * chunk < rows:
        start = 0 if q <= 1 else q * chunk
        parts.append(_mid_rows(x[start:], k))
    idx = jnp.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    clash = jnp.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return lax.cond(jnp.any(clash), lambda x: _mid_reference(x, k), lambda x: idx, x)


def _bottom_f32_cpu(x, k: int):
    """Bottom-K of float32 on CPU: ``top_k`` of ``−x`` with NaNs canonicalised.

    For every non-NaN ``x``, ``−x`` (a sign-bit flip) has the bits of
    ``float32_carrier(~signed_key(x))``; NaNs get the carrier of ``~key`` (``+NaN`` →
    ``0xFFFFFFFF``, ``−NaN`` → ``0x7FFFFFFF``) so that all NaNs of one sign tie.
    """
    neg_nan = lax.bitcast_convert_type(jnp.uint32(0xFFFFFFFF), jnp.float32)
    pos_nan = lax.bitcast_convert_type(jnp.uint32(0x7FFFFFFF), jnp.float32)
    sign = lax.bitcast_convert_type(x, jnp.int32) < 0
    g = jnp.where(x != x, jnp.where(sign, pos_nan, neg_nan), -x)
    return lax.top_k(g, k)[1]


def select_indices(x, k: int, kind: str):
    """Indices (int32, shape ``x.shape[:-1] + (k,)``) selected along the last axis.

    Output order: Top-K descending, Bottom-K and Mid-K ascending (in the total order),
    equal keys by increasing index.
    """
    if kind == "top" and x.dtype == jnp.float32:
        # float32 without NaN is already in the total order the CPU TopK runtime uses
        # (integer compare of the bits, ties to the lower index): skip the key pass then.
        # NaNs must be canonicalised first so that different payloads tie by index.
        def cpu(x):
            def keyed(x):
                return lax.top_k(float32_carrier(kind_key(x, kind)), k)[1]

            return lax.cond(jnp.any(x != x), keyed, lambda x: lax.top_k(x, k)[1], x)

        def other(x):
            return _top_indices(kind_key(x, kind), k)

        return lax.platform_dependent(x, cpu=cpu, default=other)
    if kind == "bottom" and x.dtype == jnp.float32:
        return lax.platform_dependent(
            x,
            cpu=lambda x: _bottom_f32_cpu(x, k),
            default=lambda x: _top_indices(kind_key(x, kind), k),
        )
    if kind == "mid":
        if x.dtype == jnp.float64:
            return _mid_reference(x, k)
        return lax.platform_dependent(
            x, cpu=lambda x: _mid_cpu(x, k), default=lambda x: _mid_reference(x, k)
        )
    return _top_indices(kind_key(x, kind), k)
