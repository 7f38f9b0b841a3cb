"""XLA (pure ``lax``) Rank-K selection: the CPU path and the reference for every backend.

All kinds reduce to "the k largest *kind keys*, ties to the lower index" (see
``keys.kind_key``): Top-K on the signed key, Bottom-K on its complement ``~key``, and
Mid-K as ranks ``[s, s + k)`` of the ascending order with ``s = ⌊(n − k)/2⌋``.

**Why ``lax.top_k`` on a float32 carrier on CPU.** The XLA CPU TopK runtime
(``std::partial_sort`` over indices) compares float32 through total-order integer keys
with ties to the lower index; on int32 (and on 16-bit floats and float64) ``lax.top_k``
lowers to a full stable sort, tens of times slower. ``keys.float32_carrier`` turns any
int32 key into a float32 with the same total order, so every ≤32-bit dtype takes the
fast runtime. Elsewhere (GPU, TPU) the int32 key goes to ``lax.top_k`` directly, which is
exact though not fast — the GPU fast path is the Pallas kernel.

**What costs what on CPU** (measured, 2-core Zen 4, jax 0.10.2): ``lax.top_k`` scans at
~1.6–2.5 ns per element plus ~1 µs per row and ~60 ns per heap insertion; a fused
element-wise or reduction pass costs ~0.2–0.3 ns per element. So the CPU paths trade
``top_k`` work for cheap passes:

* *Top-K / Bottom-K, two levels* (``_top_blocked``, rows with n ≥ 64 k): one max-reduction
  pass gives each block of b entries its largest key; the k largest entries lie in the k
  blocks ranked first by (block max, lower block index), because a block ranked before
  the block of a selected entry e holds an entry ranked before e. ``top_k`` then runs on
  the n/b block maxima and on the k·b gathered entries (blocks in ascending order, so ties
  still go to the lower index): 1.2–5× faster than one ``top_k`` over the row. The key
  (NaN canonicalisation included) is computed inside the reduction, with no pass of its
  own.
* *Top-K / Bottom-K, searched* (``_top_rows``, n ≥ 1024 and n < 64 k): the band search
  below brackets rank n − k (equal keys counted by decreasing index, the Top-K order)
  within W ranks, and ``top_k`` runs on the row with everything below masked, so only
  ≤ k + W entries enter its heap instead of ~k ln(n/k): ~1.4–1.7× faster.
* Shorter rows: float32 Top-K is ``lax.top_k`` on ``x`` itself, redone on the key only if
  a NaN was selected (``_top_f32``: no pass before it), float32 Bottom-K ``top_k`` of
  ``−x`` (``_bottom_f32``), other dtypes ``top_k`` on the carrier of the key.
* *Mid-K* (``_mid_rows``): a search by counting passes finds, per row, a lower bound
  ``(B, J)`` in the composite order (key, index) at most ``W`` ranks below rank s and a
  key ``U`` at most ``W′`` ranks above rank s + k (``_band_search``); then one ``top_k`` of
  k + W over the two-sided masked band, directly or in two levels like Top-K
  (``_band_take``). Each pass counts four probes at once, four 8-bit counters packed in a
  uint32 over blocks of 32 entries (``_counts``: the cost of one plain count). The first
  probes come from a normal fit to a sample; later ones interpolate the counts in the
  value coordinate, spread by the expected error of the empirical CDF (``½√N`` for a
  bracket of N entries); a bracket that did not halve is bisected in key space next,
  which bounds the passes by ``2 (32 + log2 n)``; a tie group longer than the slack is
  resolved by searching the index inside it. 2–4 passes for smooth data. Rows are
  processed in chunks of ~``MID_CHUNK`` entries (``lax.map``) so the passes re-read a
  cache-resident block (and temporaries stay small).

Batching: ``select_indices`` is a ``custom_vmap`` that folds the vmapped axis into the
rows, so its ``lax.cond`` fallbacks stay real branches under ``vmap`` (a batched predicate
would run both). float64 keeps the stable sort everywhere.
"""

from __future__ import annotations

import functools
from statistics import NormalDist

import jax
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

#: Entries per packed count: each 8-bit counter counts at most this many.
COUNT_BLOCK = 32
#: Entries per ``lax.map`` chunk of rows in the searched paths (2 MiB of keys: fewer
#: chunks cut the per-pass bookkeeping, larger ones leave the L2 cache; measured).
MID_CHUNK = 1 << 19
#: Mid-K with s ≤ this takes ``top_k(s + k)`` directly (no search).
MID_MIN_S = 64
#: Top-K rows at least this long that the two-level path does not take (n < 64 k) are
#: searched and masked first (``_top_rows``).
TOP_SEARCH_MIN_N = 1024


def _carrier_top_k(key, k: int):
    """Indices of the k largest int32 keys per row, ties to the lower index (CPU runtime)."""
    return lax.top_k(float32_carrier(key), k)[1]


def _sorted_top(key, k: int):
    """Indices of the k largest keys by a stable sort (int64 keys; any platform)."""
    iota = lax.broadcasted_iota(jnp.int32, key.shape, key.ndim - 1)
    _, idx = lax.sort((~key, iota), dimension=key.ndim - 1, num_keys=1, is_stable=True)
    return idx[..., :k]


def _gather_blocks(xb, blocks):
    """``xb[r, blocks[r, i], :]`` for rows r: (r, nb, b), (r, m) → (r, m, b)."""
    return jax.vmap(lambda rows, i: rows[i])(xb, blocks)


# ---------------------------------------------------------------------------- Top-K


def _block_size(n: int, k: int) -> int:
    """Block length of the two-level Top-K, 0 where one ``top_k`` over the row is cheaper.

    Cost ~ n/b + k·b scanned entries, smallest at b ≈ √(n/k) (rounded down: measured
    faster on 1024×1024, k = 8); b ≤ 32 because XLA CPU splits longer reductions into a
    reduce-window that materialises its operand. For n < 64 k the heap work of two
    ``top_k`` calls outweighs the shorter scans (measured on 256×4096, k = 128).
    """
    return _pow2_block(n, k, min_ratio=64, exponent=int)


def _pow2_block(n: int, kept: int, *, min_ratio: int, exponent) -> int:
    """A power of two in [8, 32] near √(n / kept) (``exponent`` rounds its log2) that
    divides n; 0 for rows shorter than ``min_ratio · kept`` or when none divides n."""
    if n < min_ratio * kept:
        return 0
    b = int(np.clip(2 ** exponent(np.log2(np.sqrt(n / kept))), 8, 32))
    while b >= 8 and n % b:
        b //= 2
    return b if b >= 8 else 0


def _top_blocked(x, k: int, kind: str, b: int):
    """Top-K of ``kind_key(x)`` through the k best blocks of b entries (see module doc)."""
    r, n = x.shape
    xb = x.reshape(r, n // b, b)
    best = jnp.max(kind_key(xb, kind), axis=-1)
    blocks = lax.sort(_carrier_top_k(best, k), dimension=-1)
    sub = kind_key(_gather_blocks(xb, blocks), kind).reshape(r, k * b)
    pos = _carrier_top_k(sub, k)
    return jnp.take_along_axis(blocks, pos // b, axis=-1) * b + pos % b


def _top_f32(x, k: int):
    """float32 Top-K: ``top_k`` on x, redone on the key only if a NaN was selected.

    The runtime orders float32 by their bits, which is the total order except that NaNs
    of different payloads do not tie. +NaNs come first in both orders, so a row whose k
    selected values hold no NaN has no +NaN, and its selection (non-NaN entries only)
    is the same in both orders.
    """
    vals, idx = lax.top_k(x, k)
    return lax.cond(
        jnp.any(vals != vals), lambda x: _carrier_top_k(signed_key(x), k), lambda x: idx, x
    )


def _bottom_f32(x, k: int):
    """float32 Bottom-K: ``top_k`` of ``−x`` with NaNs canonicalised in the same pass.

    For every non-NaN x, ``−x`` (a sign-bit flip) has the bits of
    ``float32_carrier(~signed_key(x))``; NaNs get the carrier of ``~key`` (+NaN →
    0xFFFFFFFF, −NaN → 0x7FFFFFFF) so that all NaNs of one sign tie.
    """
    neg_nan = lax.bitcast_convert_type(jnp.uint32(0xFFFFFFFF), jnp.float32)
    pos_nan = lax.bitcast_convert_type(jnp.uint32(0x7FFFFFFF), jnp.float32)
    sign = lax.bitcast_convert_type(x, jnp.int32) < 0
    g = jnp.where(x != x, jnp.where(sign, pos_nan, neg_nan), -x)
    return lax.top_k(g, k)[1]


def _top_cpu(x, k: int, kind: str):
    n = x.shape[-1]
    b = _block_size(n, k)
    if b:
        return _top_blocked(x, k, kind, b)
    if n >= TOP_SEARCH_MIN_N and n - k > MID_MIN_S:
        return _by_chunks(
            lambda r: _top_rows(r, k, kind), x, k, lambda x: _carrier_top_k(kind_key(x, kind), k)
        )
    if x.dtype == jnp.float32:
        return _top_f32(x, k) if kind == "top" else _bottom_f32(x, k)
    return _carrier_top_k(kind_key(x, kind), k)


# ---------------------------------------------------------------------------- Mid-K


def _mid_reference(x, k: int, top):
    """Mid-K as ranks ``[s, s + k)`` of ``top(~key, s + k)`` (exact; slow for s ≈ n/2)."""
    s = (x.shape[-1] - k) // 2
    return top(kind_key(x, "mid"), s + k)[..., s:]


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


def _below(key, iota, pk, pj, n, ties_desc):
    """``(key, i) < (pk, pj)`` in the composite order; ``pj=None``: ``key ≤ pk``.

    ``ties_desc``: equal keys ordered by decreasing index (``i′ = n − 1 − i`` compared),
    the order in which Top-K counts ranks from the bottom.
    """
    if pj is None:
        return key <= pk
    return (key < pk) | ((key == pk) & ((iota >= n - pj) if ties_desc else (iota < pj)))


def _counts(key, pk, pj=None, ties_desc=False):
    """Per row and probe ``#{i : (key[i], i) < (pk, pj)}`` in one pass (``pj=None``: ``≤ pk``).

    ``key`` (r, n) int32, ``pk``/``pj`` (r, P) int32 with P ≤ 4 → (r, P) int32
    (``ties_desc``: see ``_below``). The P
    indicator bits of an entry go to 8-bit fields of one uint32; a sum over a block of
    ``COUNT_BLOCK`` ≤ 255 entries cannot carry between fields, so one reduction counts
    all probes at the cost of one plain count (separate reductions cost ~P×). Blocks of
    32: XLA CPU splits longer reductions into a reduce-window that materialises its
    operand, which doubled the pass time (measured).
    """
    r, n = key.shape
    p = pk.shape[-1]
    nb, tail = divmod(n, COUNT_BLOCK)
    out = jnp.zeros((r, p), jnp.int32)
    if nb:
        kb = key[:, : nb * COUNT_BLOCK].reshape(r, nb, COUNT_BLOCK)
        iota = None
        if pj is not None:
            iota = lax.broadcasted_iota(jnp.int32, kb.shape, 1) * COUNT_BLOCK
            iota = iota + lax.broadcasted_iota(jnp.int32, kb.shape, 2)
        acc = jnp.zeros(kb.shape, jnp.uint32)
        for q in range(p):
            pjq = None if pj is None else pj[:, q, None, None]
            hit = _below(kb, iota, pk[:, q, None, None], pjq, n, ties_desc)
            acc = acc + jnp.where(hit, np.uint32(1 << (8 * q)), np.uint32(0))
        part = jnp.sum(acc, axis=-1, dtype=jnp.uint32)
        fields = (part[:, :, None] >> (8 * np.arange(p, dtype=np.uint32))) & np.uint32(0xFF)
        out = out + jnp.sum(fields, axis=1, dtype=jnp.int32)
    if tail:
        kt = key[:, nb * COUNT_BLOCK :][:, None, :]
        iota = lax.broadcasted_iota(jnp.int32, kt.shape, 2) + nb * COUNT_BLOCK
        pjt = None if pj is None else pj[:, :, None]
        hit = _below(kt, iota, pk[:, :, None], pjt, n, ties_desc)
        out = out + jnp.sum(hit, axis=-1, dtype=jnp.int32)
    return out


def _mid_slack(n: int, k: int) -> tuple[int, int]:
    """Slack (W, W′) of the Mid-K search below rank s and above rank s + k.

    Larger slack saves passes (each ~0.3 ns per entry) but grows the final ``top_k`` of
    k + W (~60 ns per kept entry and row): small for short rows, up to 64 for long ones.
    """
    w = int(np.clip(n // 256, 4, 64))
    return w, w


def _initial_probes(key, t: int, u: int, slack, dtype):
    """First-pass probes from a normal fit to a sample, and open-end values.

    The sample is ``m ≈ 2√n`` keys in runs of 16 spread over the row (a run per cache
    line: a strided sample would read every line of the row). Probe ranks
    ``t − W/2 − {1.5, 0.5}Δ`` and ``u + W′/2 + {0.5, 1.5}Δ``, Δ = 0.4 n/√m the standard
    error of the sample mean in ranks. Returns ``(probes (r, 4), vlo (r,), vhi (r,))``
    with ``vlo, vhi = mean ∓ 6 sd`` standing for counts 0 and n where a bracket is still
    open. Only speed depends on them: rows without finite sample values get key-space
    quarter points and NaN ends (no interpolation).
    """
    r, n = key.shape
    w, wu = slack
    runs = int(np.clip(np.sqrt(n) / 8, 1, 64))
    span = n // runs
    sample = key[:, : runs * span].reshape(r, runs, span)[:, :, : min(span, 16)]
    v = _key_value(sample.reshape(r, -1), dtype)
    fin = jnp.isfinite(v)
    cnt = jnp.maximum(jnp.sum(fin, axis=-1, dtype=jnp.float32), 1.0)
    mean = jnp.sum(jnp.where(fin, v, 0.0), axis=-1) / cnt
    sd = jnp.sqrt(jnp.sum(jnp.where(fin, (v - mean[:, None]) ** 2, 0.0), axis=-1) / cnt)
    delta = 0.4 * n / np.sqrt(v.shape[-1])
    ranks = [t - w / 2 - 1.5 * delta, t - w / 2 - 0.5 * delta]
    ranks += [u + wu / 2 + 0.5 * delta, u + wu / 2 + 1.5 * delta]
    z = [NormalDist().inv_cdf(float(np.clip(q / n, 0.5 / n, 1 - 0.5 / n))) for q in ranks]
    guess = mean[:, None] + sd[:, None] * np.array(z, np.float32)
    kmin, kmax = key_range(dtype)
    quarter = np.array([kmin + (kmax - kmin) * (q + 1) // 5 for q in range(4)], np.int32)
    probes = jnp.where(jnp.isfinite(guess), _value_key(guess, dtype), quarter)
    return jnp.clip(probes, kmin, kmax - 1), mean - 6 * sd, mean + 6 * sd


def _interp(a, b, ca, cb, va, vb, aim, bisect, dtype):
    """A key in ``[a, b − 1]`` aimed at count ``aim``, linear in the value (per row).

    ``(a, ca = #{key < a})`` and ``(b, cb = #{key ≤ b})`` bracket the wanted count;
    ``va``/``vb`` are their values. Non-finite estimates and ``bisect`` rows take the key
    midpoint (which halves the bracket in key space).
    """
    frac = jnp.clip((aim - ca) / jnp.maximum(cb - ca, 1).astype(jnp.float32), 0.0, 1.0)
    v = va + frac * (vb - va)
    half = lax.bitcast_convert_type(b - a, jnp.uint32) >> np.uint32(1)
    mid = a + lax.bitcast_convert_type(half, jnp.int32)
    probe = jnp.where(jnp.isfinite(v) & ~bisect, _value_key(v, dtype), mid)
    return jnp.clip(probe, a, b - 1)


def _interp_index(jl, jh, ca, cb, aim, bisect):
    """An index in ``[jl + 1, jh]`` aimed at composite count ``aim`` inside a tie group."""
    frac = jnp.clip((aim - ca) / jnp.maximum(cb - ca, 1).astype(jnp.float32), 0.0, 1.0)
    j = jl + jnp.round(frac * (jh + 1 - jl).astype(jnp.float32)).astype(jnp.int32)
    j = jnp.where(bisect, jl + (jh - jl + 1) // 2, j)
    return jnp.clip(j, jl + 1, jh)


#: Count aims of a bound's probes, in units of the expected error of an interpolated
#: rank: two probes when both bounds are open, four when one is.
_Z2, _Z4 = (-1.0, 1.0), (-1.5, -0.5, 0.5, 1.5)


def _band_search(key, t: int, u: int, first, vlo, vhi, *, slack, dtype, ties_desc=False):
    """Brackets of ranks t and u by counting passes (see module doc).

    ``key`` (r, n) int32 keys of ``dtype``; ``0 ≤ t < u ≤ n``; ``first`` (r, 4) probe
    keys of the first pass; ``vlo``/``vhi`` (r,) values standing for an open end.
    Returns ``(B, J, c, U, c_U, passes)`` with, per row,

    * ``c = #{(key, i) < (B, J)}`` and ``0 ≤ t − c ≤ W``;
    * ``c_U = #{key ≤ U} ≥ u``, and ``c_U − u ≤ W′`` unless the entries of rank u − 1 tie
      beyond it.

    ``ties_desc``: the composite order compares ``n − 1 − i`` instead of ``i`` (equal keys
    by decreasing index), so ``J`` counts from the end of the row.

    The lower bracket is ``lo ≤ key of rank t ≤ hi`` with ``c_lo = #{< lo}``,
    ``c_hi = #{≤ hi}``; once ``lo = hi`` (a tie group longer than W) it is the index
    bracket ``[jl, jh]`` inside the group, ``c_lo = #{< (lo, jl)}``,
    ``c_jh = #{< (lo, jh + 1)}``. The upper bracket is ``ul ≤ key of rank u − 1 ≤ U``
    with ``c_ul = #{< ul}``, ``c_U = #{≤ U}``. Every plain probe narrows both. The body
    is element-wise per row apart from the counting pass, so XLA fuses it into a few
    kernels (per-row bookkeeping, not the pass, dominated with one kernel per op).
    """
    r, n = key.shape
    w, wu = slack
    kmin, kmax = key_range(dtype)
    names = "lo hi c_lo c_hi jl jh c_jh ul U c_ul c_U stall_l stall_u".split()

    def open_ended(st):
        return (t - st["c_lo"] > w), (st["c_U"] - u > wu) & (st["ul"] < st["U"])

    def value(kv, end, v_end):
        return jnp.where(kv == end, v_end, _key_value(kv, dtype))

    def probes(st):
        # vectorised over the 4 slots (r, 4): slots 0, 1 serve the lower bound and 2, 3
        # the upper one while both are open, all 4 the open one otherwise
        low, up = open_ended(st)
        both, kph = (low & up)[:, None], st["lo"] < st["hi"]
        to_low = jnp.where(both, np.array([True, True, False, False]), low[:, None])
        z = jnp.where(both, np.array(_Z2 * 2, np.float32), np.array(_Z4, np.float32))
        lead = jnp.where(both, np.array([True, False, True, False]), np.arange(4) == 0)
        top = jnp.where(kph, st["c_hi"], st["c_jh"])
        sig_l = jnp.maximum(0.5 * jnp.sqrt((top - st["c_lo"]).astype(jnp.float32)), w / 4 + 0.25)
        sig_u = jnp.sqrt((st["c_U"] - st["c_ul"]).astype(jnp.float32))
        sig_u = jnp.maximum(0.5 * sig_u, wu / 4 + 0.25)

        def sel(a, b):
            return jnp.where(to_low, a[:, None], b[:, None])

        aim = jnp.where(to_low, t - w / 2 + sig_l[:, None] * z, u + wu / 2 + sig_u[:, None] * z)
        stall = sel(st["stall_l"], st["stall_u"]) & lead
        m = _interp(
            sel(st["lo"], st["ul"]), sel(st["hi"], st["U"]),
            sel(st["c_lo"], st["c_ul"]), sel(st["c_hi"], st["c_U"]),
            sel(value(st["lo"], kmin, vlo), value(st["ul"], kmin, vlo)),
            sel(value(st["hi"], kmax, vhi), value(st["U"], kmax, vhi)),
            aim, stall, dtype,
        )  # fmt: skip
        col = lambda a: a[:, None]  # noqa: E731
        j = _interp_index(
            col(st["jl"]), col(st["jh"]), col(st["c_lo"]), col(st["c_jh"]), aim, stall
        )
        index_probe = to_low & ~kph[:, None]
        pk = jnp.where(index_probe, st["lo"][:, None], m)
        return pk, jnp.where(index_probe, j, n), low & ~kph

    def update(st, pk, pj, c):
        kph = st["lo"] < st["hi"]
        new = dict(st)
        for q in range(4):
            cq, mq, jq = c[:, q], pk[:, q], pj[:, q]
            plain, le = jq == n, cq <= t
            ok_lo = kph & plain & le & (mq >= st["lo"])
            ok_hi = kph & plain & ~le & (mq < st["hi"])
            ok_jl, ok_jh = ~kph & ~plain & le, ~kph & ~plain & ~le
            ok_u = plain & (cq >= u) & (mq < st["U"])
            ok_ul = plain & (cq < u) & (mq >= st["ul"])
            for name, ok, v, up in (
                ("lo", ok_lo, mq + 1, True), ("c_lo", ok_lo | ok_jl, cq, True),
                ("hi", ok_hi, mq, False), ("c_hi", ok_hi, cq, False),
                ("jl", ok_jl, jq, True), ("jh", ok_jh, jq - 1, False), ("c_jh", ok_jh, cq, False),
                ("U", ok_u, mq, False), ("c_U", ok_u, cq, False),
                ("ul", ok_ul, mq + 1, True), ("c_ul", ok_ul, cq, True),
            ):  # fmt: skip
                best = jnp.maximum if up else jnp.minimum
                new[name] = jnp.where(ok, best(new[name], v), new[name])
        new["c_jh"] = jnp.where(new["lo"] < new["hi"], new["c_hi"], new["c_jh"])
        # a bracket (in entries) that did not halve is bisected in key space next pass
        width = jnp.where(kph, st["c_hi"], st["c_jh"]) - st["c_lo"]
        new_width = jnp.where(new["lo"] < new["hi"], new["c_hi"], new["c_jh"]) - new["c_lo"]
        new["stall_l"] = 2 * new_width > width
        new["stall_u"] = 2 * (new["c_U"] - new["c_ul"]) > st["c_U"] - st["c_ul"]
        return new

    def body(carry):
        st, it = carry
        pk, pj, index_rows = probes(st)
        first_pass = it == 0
        pk = jnp.where(first_pass, first, pk)
        pj = jnp.where(first_pass, n, pj)
        # composite compares (with the index) only once some row is inside a tie group
        c = lax.cond(
            jnp.any(index_rows) & ~first_pass,
            lambda: _counts(key, pk, pj, ties_desc),
            lambda: _counts(key, pk),
        )
        new = update(st, pk, pj, c)
        new["stall_l"] &= ~first_pass
        new["stall_u"] &= ~first_pass
        return new, it + 1

    def live(carry):
        low, up = open_ended(carry[0])
        return jnp.any(low | up)

    init = dict(
        zip(names, (kmin, kmax, 0, n, 0, n - 1, n, kmin, kmax, 0, n, False, False), strict=True)
    )
    st = {a: jnp.full((r,), v, bool if isinstance(v, bool) else jnp.int32) for a, v in init.items()}
    st, passes = lax.while_loop(live, body, (st, jnp.int32(0)))
    return st["lo"], st["jl"], st["c_lo"], st["U"], st["c_U"], passes


def _band_block(n: int, kept: int) -> int:
    """Block length of the two-level band ``top_k`` (0: one ``top_k`` over the row)."""
    return _pow2_block(n, kept, min_ratio=32, exponent=round)


def _band_take(key, k: int, t: int, lower, upper, slack):
    """Indices of ranks ``[t, t + k)`` given the search's bounds (see ``_band_search``).

    Entries in ``[(B, J), U]`` get ``g = MAX − (key − B)`` (ascending order ↔ descending
    g, ties by index), all others ``MIN``; ``top_k(g, k + W)`` then holds ranks
    ``c … c + k + W`` and the window starts at ``t − c``. Two levels where rows are long:
    blocks holding a kept entry (at most ``k + W + W′`` of them when no tie group widens
    the band; otherwise the one-level path runs) are found by ``top_k`` on block flags,
    which lists them in ascending order, then ``top_k`` runs on their entries only.
    """
    r, n = key.shape
    (b_key, j, c), (big_u, c_u) = lower, upper
    w, wu = slack
    kk, kept = k + w, k + w + wu

    def g(kv, iota, keep_only=False):
        ex = (slice(None),) + (None,) * (kv.ndim - 1)
        bk, jj, uu = b_key[ex], j[ex], big_u[ex]
        keep = ((kv > bk) | ((kv == bk) & (iota >= jj))) & (kv <= uu)
        return keep if keep_only else jnp.where(keep, INT32_MAX - (kv - bk), INT32_MIN)

    def one_level(key):
        return _carrier_top_k(g(key, lax.broadcasted_iota(jnp.int32, key.shape, 1)), kk)

    bs = _band_block(n, kept)

    def two_level(key):
        kb = key.reshape(r, n // bs, bs)
        iota = lax.broadcasted_iota(jnp.int32, kb.shape, 1) * bs
        iota = iota + lax.broadcasted_iota(jnp.int32, kb.shape, 2)
        flag = jnp.any(g(kb, iota, keep_only=True), axis=-1).astype(jnp.float32)
        blocks = lax.top_k(flag, kept)[1]
        iota = blocks[:, :, None] * bs + jnp.arange(bs, dtype=jnp.int32)
        pos = _carrier_top_k(g(_gather_blocks(kb, blocks), iota).reshape(r, kept * bs), kk)
        return jnp.take_along_axis(blocks, pos // bs, axis=-1) * bs + pos % bs

    if bs:
        top = lax.cond(jnp.all(c_u - c <= kept), two_level, one_level, key)
    else:
        top = one_level(key)
    pos = (t - c)[:, None] + jnp.arange(k, dtype=jnp.int32)
    return jnp.take_along_axis(top, pos, axis=-1)


def _mid_rows(x, k: int):
    """Mid-K of rows ``x`` (r, n): ``(indices (r, k), clash (r,))``; see module doc.

    ``clash`` flags the one case the shifted key cannot separate from the sentinel (kept
    keys spanning all 2³² values: ``B = MIN`` with ``J > 0`` and ``U = MAX``); the caller
    then takes the reference path.
    """
    n = x.shape[-1]
    t = (n - k) // 2
    slack = _mid_slack(n, k)
    key = signed_key(x)
    first, vlo, vhi = _initial_probes(key, t, t + k, slack, x.dtype)
    b, j, c, u, c_u, _ = _band_search(key, t, t + k, first, vlo, vhi, slack=slack, dtype=x.dtype)
    idx = _band_take(key, k, t, (b, j, c), (u, c_u), slack)
    return idx, (b == INT32_MIN) & (j > 0) & (u == INT32_MAX)


def _top_rows(x, k: int, kind: str):
    """Top-K of rows ``x`` (r, n) through a band search: ``(indices (r, k), clash (r,))``.

    The search brackets rank ``n − k`` from below within ``W`` ranks; ``top_k`` then
    runs with every entry under ``(B, J)`` masked to ``MIN``, so only the ≤ k + W kept
    entries enter its heap instead of ~k ln(n/k) of them (``clash``: kept ``MIN`` keys,
    which the mask cannot separate from the sentinel).
    """
    n = x.shape[-1]
    slack = (_mid_slack(n, k)[0], 0)
    key = kind_key(x, kind)
    first, vlo, vhi = _initial_probes(key, n - k, n, slack, x.dtype)
    b, j, *_ = _band_search(
        key, n - k, n, first, vlo, vhi, slack=slack, dtype=x.dtype, ties_desc=True
    )
    iota = lax.broadcasted_iota(jnp.int32, key.shape, 1)
    keep = (key > b[:, None]) | ((key == b[:, None]) & (iota < n - j[:, None]))
    return _carrier_top_k(jnp.where(keep, key, INT32_MIN), k), (b == INT32_MIN) & (j > 0)


def _by_chunks(rows_fn, x, k: int, fallback):
    """``rows_fn`` over chunks of about ``MID_CHUNK`` entries (``lax.map``), so that
    counting passes re-read a cache-resident block; ``fallback(x)`` for all rows where
    any row's flag is set."""
    rows, n = x.shape
    chunk = max(1, min(rows, MID_CHUNK // n))
    q = rows // chunk
    parts = []
    if q > 1:
        body = x[: q * chunk].reshape(q, chunk, n)
        idx, flag = lax.map(rows_fn, body)
        parts.append((idx.reshape(q * chunk, k), flag.reshape(q * chunk)))
    if q <= 1 or q * chunk < rows:
        parts.append(rows_fn(x[0 if q <= 1 else q * chunk :]))
    idx = jnp.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    flag = jnp.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return lax.cond(jnp.any(flag), fallback, lambda x: idx, x)


def _mid_cpu(x, k: int):
    """Mid-K indices on CPU (``_mid_rows`` by chunks of rows)."""
    if (x.shape[-1] - k) // 2 <= MID_MIN_S:  # top_k(s + k) is no larger than the final step
        return _mid_reference(x, k, _carrier_top_k)
    return _by_chunks(
        lambda r: _mid_rows(r, k), x, k, lambda x: _mid_reference(x, k, _carrier_top_k)
    )


# ---------------------------------------------------------------------------- dispatch


def _select_cpu(x, k: int, kind: str):
    return _mid_cpu(x, k) if kind == "mid" else _top_cpu(x, k, kind)


def _select_other(x, k: int, kind: str):
    """Other platforms: ``lax.top_k`` on the int32 key (exact; stable sort or RAFT)."""
    top = lambda key, k: lax.top_k(key, k)[1]  # noqa: E731
    return _mid_reference(x, k, top) if kind == "mid" else top(kind_key(x, kind), k)


def _select2d(x, k: int, kind: str):
    if x.dtype == jnp.float64:  # int64 keys: a stable sort (what lax.top_k does anyway)
        if kind == "mid":
            return _mid_reference(x, k, _sorted_top)
        return _sorted_top(kind_key(x, kind), k)
    return lax.platform_dependent(
        x,
        cpu=functools.partial(_select_cpu, k=k, kind=kind),
        default=functools.partial(_select_other, k=k, kind=kind),
    )


@functools.cache
def _batched(k: int, kind: str):
    """``_select2d`` with a vmap rule that folds the batch into the rows."""

    @jax.custom_batching.custom_vmap
    def run(x):
        return _select2d(x, k, kind)

    @run.def_vmap
    def _rule(axis_size, in_batched, x):
        del in_batched
        b, rows, n = x.shape
        return run(x.reshape(b * rows, n)).reshape(b, rows, k), True

    return run


def select_indices(x, k: int, kind: str):
    """Indices (int32, shape ``x.shape[:-1] + (k,)``) selected along the last axis.

    Output order: Top-K descending, Bottom-K and Mid-K ascending (in the total order),
    equal keys by increasing index.
    """
    lead, n = x.shape[:-1], x.shape[-1]
    rows = int(np.prod(lead, dtype=np.int64))
    if k == 0 or rows == 0:
        return jnp.zeros((*lead, k), jnp.int32)
    return _batched(k, kind)(x.reshape(rows, n)).reshape(*lead, k)
