"""Exact radix select in Pallas (Triton backend on GPU, ``interpret=True`` on CPU).

Algorithm (MSD radix select on the order-preserving keys of ``keys.py``). For the k-th
largest kind key ``T`` of a row we never build a histogram: counting ``#{key ≥ c}`` is
monotone in ``c``, so each pass tests the ``2^D`` candidates ``c_d = P | d << shift``
(``P`` the bits found so far, ``D = Choice.digit_bits`` digit bits) against every key of the row
and keeps the largest digit with ``#{key ≥ c_d} ≥ k``. After ``⌈bits/D⌉`` passes ``P = T``;
a pass stops the search early when some ``#{key ≥ c_d}`` equals k exactly — the selected
set is then ``{key ≥ c_d}`` with no tie to resolve (after about log2(n)+D bits for
continuous data). The selected set is

    {key > T}  ∪  {the first k − #{key > T} keys equal to T, by index},

written, in index order, by a compaction pass (exclusive prefix sums of the selection
mask give each survivor its slot). Survivors are then ordered outside the kernel by a
stable sort of ``k`` keys (``Choice.ordering``). Mid-K selects the ``s + k`` largest complemented
keys minus the ``s`` largest, with ``s = ⌊(n − k)/2⌋`` (two searches).

Launch shapes (``Choice.multiblock``, ``Choice.tile``, ``Choice.filter_capacity``):

* fused (``multiblock=False``): one program per row does every pass and the compaction in
  one launch; the search exits per row. Three sub-variants: *resident* (``tile ≥ n``:
  the row is loaded once and stays in registers), *streamed* (the row is re-read every
  pass) and *filtered* (Top/Bottom-K with ``filter_capacity > 0``: once the bucket of the k-th key
  has ≤ ``filter_capacity`` members, keys above it go straight to the output and the bucket is
  copied to a scratch that the remaining passes read instead of the row — AIR top-k's
  iteration-fused filtering).
* multi-block (``multiblock=True``): a grid of ``rows × chunks`` programs; one launch per
  radix pass writes per-chunk candidate counts, XLA sums them and picks the digit; then a
  counting launch and a writing launch do the compaction with per-chunk offsets. This is
  the path for few rows of huge length (batch 1), where one program per row would leave
  most of the GPU idle.

Keys are compared as *signed* int32 (Triton's comparisons are signed); candidate bits are
built in the unsigned domain and moved to the signed one by ``u ^ INT32_MIN`` (32-bit keys)
or ``u − 2^15`` (16-bit keys).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl

from spiraljax.kernels.keys import key_bits, kind_key
from spiraljax.kernels.pallas.lowering import (
    I32,
    compiler_params,
    masked_load,
    masked_store,
    to_signed,
)


def _npasses(nbits: int, digit: int) -> int:
    return -(-nbits // digit)


def _pass_at(p, nbits: int, digit: int):
    """(shift, width) of radix pass ``p`` (a traced int32), most significant first: every
    pass takes ``digit`` bits but the last, which takes what is left.

    The passes are one rolled loop (``lax.fori_loop`` / ``while_loop``) rather than unrolled
    in Python: unrolled, a 2-bit search over 32-bit keys is 16 copies of the counting loop,
    which made the Triton IR — and the GPU compile time — about 8x larger.
    """
    shift = jnp.maximum(I32(nbits) - (p + 1) * digit, I32(0))
    width = jnp.minimum(I32(digit), I32(nbits) - p * digit)
    return shift, width


def _shl(a, shift):
    """``a << shift`` on int32 bit patterns (``3 << 30`` sets the sign bit, as wanted)."""
    return lax.shift_left(jnp.asarray(a, I32), jnp.asarray(shift, I32))


def _count_range(x_ref, row, lo, hi, cand, kind, tile, n):
    """#{key ≥ cand[d]} over columns [lo, hi) (``lo`` a multiple of ``tile``)."""

    def body(t, acc):
        v, cols, mask = masked_load(x_ref, row, lo + t * tile, tile, n)
        key = kind_key(v, kind)
        ok = (key[None, :] >= cand[:, None]) & (mask & (cols < hi))[None, :]
        return acc + jnp.sum(ok.astype(I32), axis=1, dtype=I32)

    ntiles = (hi - lo + tile - 1) // tile
    return lax.fori_loop(I32(0), ntiles.astype(I32), body, jnp.zeros(cand.shape, I32))


def _digit_step(cnt, kk, width, d):
    """Largest admissible digit and the counts at it and at the next digit."""
    size = _shl(1, width)
    ok = ((cnt >= kk) | (d == 0)) & (d < size)
    dsel = jnp.max(jnp.where(ok, d, 0))
    cnt_sel = jnp.sum(jnp.where(d == dsel, cnt, 0), dtype=I32)
    cnt_next = jnp.sum(jnp.where(d == dsel + 1, cnt, 0), dtype=I32)
    has_next = dsel + 1 < size
    return dsel, cnt_sel, cnt_next, has_next


class _Search:
    """State of one radix search (scalars in-kernel, ``(rows,)`` vectors in XLA glue)."""

    @staticmethod
    def init(shape=()):
        z = jnp.zeros(shape, I32)
        # prefix (unsigned bits), #{key > upper}, done flag, strict threshold when done
        return (z, z, z, z)

    @staticmethod
    def update(state, cnt, kk, shift, width, nbits, d):
        prefix, upper, done, tstrict = state
        dsel, cnt_sel, cnt_next, has_next = _digit_step(cnt, kk, width, d)
        exact = (done == 0) & (dsel > 0) & (cnt_sel == kk)
        cand_sel = to_signed(prefix | _shl(dsel, shift), nbits)
        keep = (done != 0) | exact
        tstrict = jnp.where(exact, cand_sel - 1, tstrict)
        prefix = jnp.where(keep, prefix, prefix | _shl(dsel, shift))
        upper = jnp.where(keep, upper, jnp.where(has_next, cnt_next, upper))
        done = jnp.where(exact, 1, done)
        return prefix, upper, done, tstrict

    @staticmethod
    def finish(state, kk, nbits):
        """(strict threshold, tie key, ties needed): select key > ts, then ties == te."""
        prefix, upper, done, tstrict = state
        t = to_signed(prefix, nbits)
        ts = jnp.where(done != 0, tstrict, t)
        need = jnp.where(done != 0, 0, kk - upper)
        return ts, t, need


def _members(key, valid, thr, tie_base):
    """Selection mask of one search result over a tile, and the updated tie count."""
    ts, te, need = thr
    tie = (key == te) & valid & (need > 0)
    ti = tie.astype(I32)
    rank = tie_base + jnp.cumsum(ti, dtype=I32) - ti
    sel = ((key > ts) & valid) | (tie & (rank < need))
    return sel, tie_base + jnp.sum(ti, dtype=I32)


def _selection(key, valid, thr_hi, thr_lo, ties):
    sel, t_hi = _members(key, valid, thr_hi, ties[0])
    if thr_lo is None:
        return sel, (t_hi,)
    lo, t_lo = _members(key, valid, thr_lo, ties[1])
    return sel & ~lo, (t_hi, t_lo)


# ----------------------------------------------------------------------------- fused


def _resident_counts(key, mask, prefix, shift, nbits, digit):
    """#{key ≥ c_d} for each digit d, from a row held in registers (one sum per digit)."""
    d = lax.broadcasted_iota(I32, (1 << digit,), 0)
    cnt = jnp.zeros((1 << digit,), I32)
    for j in range(1 << digit):
        c = to_signed(prefix | _shl(j, shift), nbits)
        cnt = jnp.where(d == j, jnp.sum(((key >= c) & mask).astype(I32), dtype=I32), cnt)
    return cnt


def _fused_kernel(x_ref, o_ref, *, n, k, targets, kind, nbits, choice):
    row = pl.program_id(0)
    d = lax.broadcasted_iota(I32, (1 << choice.digit_bits,), 0)
    # Resident variant: a row no longer than `tile` is loaded once and every pass and the
    # compaction read it from registers instead of re-reading memory.
    resident = choice.tile >= n
    if resident:
        rv, rcols, rmask = masked_load(x_ref, row, I32(0), choice.tile, n)
        rkey = kind_key(rv, kind)
    thresholds = []
    for kk in targets:
        if kk == 0:  # empty set: nothing is above INT32_MAX, no ties needed
            thresholds.append((I32(np.iinfo(np.int32).max), I32(0), I32(0)))
            continue

        def radix_pass(p, st, kk=kk):
            shift, width = _pass_at(p, nbits, choice.digit_bits)
            if resident:
                cnt = _resident_counts(rkey, rmask, st[0], shift, nbits, choice.digit_bits)
            else:
                cand = to_signed(st[0] | _shl(d, shift), nbits)
                hi = jnp.where(st[2] != 0, I32(0), I32(n))  # a finished search reads nothing
                cnt = _count_range(x_ref, row, I32(0), hi, cand, kind, choice.tile, n)
            return _Search.update(st, cnt, kk, shift, width, nbits, d)

        npass = I32(_npasses(nbits, choice.digit_bits))
        st = lax.fori_loop(I32(0), npass, radix_pass, _Search.init())
        thresholds.append(_Search.finish(st, kk, nbits))
    thr_hi = thresholds[0]
    thr_lo = thresholds[1] if len(thresholds) > 1 else None
    ties0 = (I32(0),) * len(thresholds)
    if resident:
        sel, _ = _selection(rkey, rmask, thr_hi, thr_lo, ties0)
        si = sel.astype(I32)
        lane = lax.broadcasted_iota(I32, (choice.tile,), 0)
        pos = jnp.where(sel, jnp.cumsum(si, dtype=I32) - si, k + lane)
        masked_store(o_ref, row, pos, rcols, sel)
        return
    ct = choice.compact_tile
    lane = lax.broadcasted_iota(I32, (ct,), 0)

    def body(t, carry):
        base, ties = carry[0], carry[1:]
        v, cols, mask = masked_load(x_ref, row, t * ct, ct, n)
        key = kind_key(v, kind)
        sel, ties = _selection(key, mask, thr_hi, thr_lo, ties)
        si = sel.astype(I32)
        # unselected lanes aim at a private dump slot so no two lanes share an address
        pos = jnp.where(sel, base + jnp.cumsum(si, dtype=I32) - si, k + lane)
        masked_store(o_ref, row, pos, cols, sel)
        return (base + jnp.sum(si, dtype=I32), *ties)

    lax.fori_loop(I32(0), I32(pl.cdiv(n, ct)), body, (I32(0), *ties0))


def _count_keys(k_ref, row, m, cand, tile):
    """#{key ≥ cand[d]} over the first ``m`` precomputed keys of a scratch row."""

    def body(t, acc):
        cols = t * tile + lax.broadcasted_iota(I32, (tile,), 0)
        valid = cols < m
        key = _load_raw(k_ref, row, t * tile, tile, valid)
        ok = (key[None, :] >= cand[:, None]) & valid[None, :]
        return acc + jnp.sum(ok.astype(I32), axis=1, dtype=I32)

    return lax.fori_loop(I32(0), (m + tile - 1) // tile, body, jnp.zeros(cand.shape, I32))


def _load_raw(ref, row, start, size, mask):
    from jax.experimental.pallas import triton as plt

    return plt.load(ref.at[row, pl.ds(start, size)], mask=mask, other=0)


def _barrier(interpret):
    if not interpret:
        from jax.experimental.pallas import triton as plt

        plt.debug_barrier()


def _filtered_kernel(x_ref, o_ref, sk_ref, si_ref, *, n, k, kind, nbits, choice, interpret):
    """Fused Top/Bottom-K with AIR-style filtering.

    Radix passes read the whole row only until the bucket holding the k-th key (keys
    sharing the prefix found so far) has at most ``filter_capacity`` members; one more pass then
    writes every key above the bucket straight to the output and copies the bucket's
    (key, index) pairs, in index order, to a per-row scratch. The remaining passes and
    the final compaction read only the scratch, so a row is read about twice instead of
    once per pass.
    """
    row = pl.program_id(0)
    d = lax.broadcasted_iota(I32, (1 << choice.digit_bits,), 0)
    tile, ct, cap = choice.tile, choice.compact_tile, choice.filter_capacity
    lane = lax.broadcasted_iota(I32, (ct,), 0)

    def radix_pass(p, carry):
        st, filt, m, base = carry[:4], *carry[4:]
        shift, width = _pass_at(p, nbits, choice.digit_bits)
        cand = to_signed(st[0] | _shl(d, shift), nbits)
        active = st[2] == 0
        hi_row = jnp.where(active & (filt == 0), I32(n), I32(0))
        m_now = jnp.where(active & (filt != 0), m, I32(0))
        cnt = _count_range(x_ref, row, I32(0), hi_row, cand, kind, tile, n)
        # after filtering, the `base` keys above the bucket (already written) are above
        # every candidate of the later passes: count them too
        above = jnp.where(active & (filt != 0), base, I32(0))
        cnt = cnt + _count_keys(sk_ref, row, m_now, cand, tile) + above
        _, cnt_sel, _, _ = _digit_step(cnt, k, width, d)
        st = _Search.update(st, cnt, k, shift, width, nbits, d)
        bucket = cnt_sel - st[1]
        # the last pass (shift 0) leaves a single key value: nothing left to filter
        go = (shift > 0) & (filt == 0) & (st[2] == 0) & (bucket <= cap)
        bmin = to_signed(st[0], nbits)
        bmax = to_signed(st[0] | (_shl(1, shift) - 1), nbits)

        def fbody(t, carry):
            b, mb = carry
            v, cols, mask = masked_load(x_ref, row, t * ct, ct, n)
            key = kind_key(v, kind)
            above = (key > bmax) & mask
            inb = (key >= bmin) & (key <= bmax) & mask
            ai, bi = above.astype(I32), inb.astype(I32)
            masked_store(
                o_ref,
                row,
                jnp.where(above, b + jnp.cumsum(ai, dtype=I32) - ai, k + lane),
                cols,
                above,
            )
            spos = jnp.where(inb, mb + jnp.cumsum(bi, dtype=I32) - bi, cap + lane)
            masked_store(sk_ref, row, spos, key, inb)
            masked_store(si_ref, row, spos, cols, inb)
            return b + jnp.sum(ai, dtype=I32), mb + jnp.sum(bi, dtype=I32)

        ntiles = jnp.where(go, I32(pl.cdiv(n, ct)), I32(0))
        b_new, m_new = lax.fori_loop(I32(0), ntiles, fbody, (I32(0), I32(0)))
        _barrier(interpret)
        base = jnp.where(go, b_new, base)
        m = jnp.where(go, m_new, m)
        filt = jnp.where(go, I32(1), filt)
        return (*st, filt, m, base)

    init = (*_Search.init(), I32(0), I32(0), I32(0))
    npass = I32(_npasses(nbits, choice.digit_bits))
    *st, filt, m, base = lax.fori_loop(I32(0), npass, radix_pass, init)
    thr = _Search.finish(st, k, nbits)

    def wbody_row(t, carry):
        b, ties = carry
        v, cols, mask = masked_load(x_ref, row, t * ct, ct, n)
        key = kind_key(v, kind)
        sel, (ties,) = _selection(key, mask, thr, None, (ties,))
        si = sel.astype(I32)
        masked_store(
            o_ref, row, jnp.where(sel, b + jnp.cumsum(si, dtype=I32) - si, k + lane), cols, sel
        )
        return b + jnp.sum(si, dtype=I32), ties

    def wbody_scratch(t, carry):
        b, ties = carry
        cols = t * ct + lane
        valid = cols < m
        key = _load_raw(sk_ref, row, t * ct, ct, valid)
        idx = _load_raw(si_ref, row, t * ct, ct, valid)
        sel, (ties,) = _selection(key, valid, thr, None, (ties,))
        si = sel.astype(I32)
        masked_store(
            o_ref, row, jnp.where(sel, b + jnp.cumsum(si, dtype=I32) - si, k + lane), idx, sel
        )
        return b + jnp.sum(si, dtype=I32), ties

    n_row = jnp.where(filt == 0, I32(pl.cdiv(n, ct)), I32(0))
    lax.fori_loop(I32(0), n_row, wbody_row, (I32(0), I32(0)))
    n_scr = jnp.where(filt != 0, (m + ct - 1) // ct, I32(0))
    lax.fori_loop(I32(0), n_scr, wbody_scratch, (base, I32(0)))


def _filtered(x2d, k, kind, choice, interpret):
    rows, n = x2d.shape
    kernel = functools.partial(
        _filtered_kernel,
        n=n,
        k=k,
        kind=kind,
        nbits=key_bits(x2d.dtype),
        choice=choice,
        interpret=interpret,
    )
    scratch = jax.ShapeDtypeStruct((rows, choice.filter_capacity + choice.compact_tile), I32)
    out, _, _ = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, k + choice.compact_tile), I32), scratch, scratch),
        grid=(rows,),
        name="rankk_filtered",
        interpret=interpret,
        **compiler_params(choice, interpret),
    )(x2d)
    return out[:, :k]


def _resident_width(n, choice):
    return choice.tile if choice.tile >= n else 0


def _fused(x2d, k, kind, targets, choice, interpret):
    rows, n = x2d.shape
    nbits = key_bits(x2d.dtype)
    kernel = functools.partial(
        _fused_kernel, n=n, k=k, targets=targets, kind=kind, nbits=nbits, choice=choice
    )
    out = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct(
            (rows, k + max(choice.compact_tile, _resident_width(n, choice))), I32
        ),
        grid=(rows,),
        interpret=interpret,
        **compiler_params(choice, interpret),
    )(x2d)
    return out[:, :k]


# ------------------------------------------------------------------------ multi-block


def _chunk_len(n, choice):
    tiles = pl.cdiv(n, choice.tile)
    return pl.cdiv(tiles, min(choice.chunks, tiles)) * choice.tile


def _count_kernel(x_ref, p_ref, o_ref, *, n, kind, nbits, choice, clen):
    row, c = pl.program_id(0), pl.program_id(1)
    d = lax.broadcasted_iota(I32, (1 << choice.digit_bits,), 0)
    prefix, done, shift = p_ref[row, 0], p_ref[row, 1], p_ref[row, 2]
    cand = to_signed(prefix | _shl(d, shift), nbits)
    lo = c * clen
    hi = jnp.where(done != 0, lo, jnp.minimum(lo + clen, n))
    cnt = _count_range(x_ref, row, lo, hi, cand, kind, choice.tile, n)
    o_ref[row, c, :] = cnt


def _mb_counts(x2d, state, kind, nbits, shift, choice, interpret):
    rows, n = x2d.shape
    clen = _chunk_len(n, choice)
    nch = pl.cdiv(n, clen)
    kernel = functools.partial(_count_kernel, n=n, kind=kind, nbits=nbits, choice=choice, clen=clen)
    # the pass's shift is an operand, not a constant: one kernel serves every pass
    p = jnp.stack([state[0], state[2], jnp.broadcast_to(shift, state[0].shape)], axis=1)
    cnt = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((rows, nch, 1 << choice.digit_bits), I32),
        grid=(rows, nch),
        name="rankk_radix_pass",
        interpret=interpret,
        **compiler_params(choice, interpret),
    )(x2d, p)
    return jnp.sum(cnt, axis=1, dtype=I32)


def _mb_search(x2d, kk, kind, choice, interpret):
    rows = x2d.shape[0]
    nbits = key_bits(x2d.dtype)
    if kk == 0:
        full = jnp.full((rows,), np.iinfo(np.int32).max, I32)
        return full, jnp.zeros((rows,), I32), jnp.zeros((rows,), I32)
    d = lax.broadcasted_iota(I32, (rows, 1 << choice.digit_bits), 1)
    npass = _npasses(nbits, choice.digit_bits)

    def more(carry):  # stop launching once every row has found its threshold
        p, st = carry
        return (p < npass) & ~jnp.all(st[2] != 0)

    def radix_pass(carry):
        p, st = carry
        shift, width = _pass_at(p, nbits, choice.digit_bits)
        cnt = _mb_counts(x2d, st, kind, nbits, shift, choice, interpret)
        new = jax.vmap(lambda s, c, d: _Search.update(s, c, kk, shift, width, nbits, d))(st, cnt, d)
        return p + 1, tuple(new)

    _, st = lax.while_loop(more, radix_pass, (I32(0), _Search.init((rows,))))
    return _Search.finish(st, kk, nbits)


def _count_select_kernel(x_ref, t_ref, o_ref, *, n, ntargets, kind, choice, clen):
    """Per chunk and target: #{key > ts} and #{key == te} (when ties are needed)."""
    row, c = pl.program_id(0), pl.program_id(1)
    thr = [tuple(t_ref[row, 3 * j + i] for i in range(3)) for j in range(ntargets)]
    ct = choice.compact_tile
    lo = c * clen
    hi = jnp.minimum(lo + clen, n)

    def body(t, carry):
        v, cols, mask = masked_load(x_ref, row, lo + t * ct, ct, n)
        key = kind_key(v, kind)
        valid = mask & (cols < hi)
        out = []
        for j, (ts, te, need) in enumerate(thr):
            above = jnp.sum(((key > ts) & valid).astype(I32), dtype=I32)
            tie = jnp.sum(((key == te) & valid & (need > 0)).astype(I32), dtype=I32)
            out += [carry[2 * j] + above, carry[2 * j + 1] + tie]
        return tuple(out)

    ntiles = ((hi - lo + ct - 1) // ct).astype(I32)
    out = lax.fori_loop(I32(0), ntiles, body, (I32(0),) * (2 * ntargets))
    for j in range(2 * ntargets):
        o_ref[row, c, j] = out[j]


def _write_kernel(x_ref, t_ref, b_ref, o_ref, *, n, k, kind, ntargets, choice, clen):
    """Write the survivors of one chunk from its global bases (selected, ties per target)."""
    row, c = pl.program_id(0), pl.program_id(1)
    thr = [tuple(t_ref[row, 3 * j + i] for i in range(3)) for j in range(ntargets)]
    thr_lo = thr[1] if ntargets > 1 else None
    ct = choice.compact_tile
    lane = lax.broadcasted_iota(I32, (ct,), 0)
    lo = c * clen
    hi = jnp.minimum(lo + clen, n)

    def body(t, carry):
        base, ties = carry[0], carry[1:]
        v, cols, mask = masked_load(x_ref, row, lo + t * ct, ct, n)
        key = kind_key(v, kind)
        sel, ties = _selection(key, mask & (cols < hi), thr[0], thr_lo, ties)
        si = sel.astype(I32)
        pos = jnp.where(sel, base + jnp.cumsum(si, dtype=I32) - si, k + lane)
        masked_store(o_ref, row, pos, cols, sel)
        return (base + jnp.sum(si, dtype=I32), *ties)

    init = tuple(b_ref[row, c, j] for j in range(1 + ntargets))
    lax.fori_loop(I32(0), ((hi - lo + ct - 1) // ct).astype(I32), body, init)


def _exclusive(a):
    return jnp.cumsum(a, axis=1, dtype=I32) - a


def _multiblock(x2d, k, kind, targets, choice, interpret):
    rows, n = x2d.shape
    thr = [_mb_search(x2d, kk, kind, choice, interpret) for kk in targets]
    t = jnp.stack([a for th in thr for a in th], axis=1)  # (rows, 3 * ntargets)
    clen = _chunk_len(n, choice)
    nch = pl.cdiv(n, clen)
    nt = len(targets)
    common = dict(n=n, kind=kind, ntargets=nt, choice=choice, clen=clen)
    params = compiler_params(choice, interpret)
    counts = pl.pallas_call(
        functools.partial(_count_select_kernel, **common),
        out_shape=jax.ShapeDtypeStruct((rows, nch, 2 * nt), I32),
        grid=(rows, nch),
        name="rankk_count_select",
        interpret=interpret,
        **params,
    )(x2d, t)
    # Ties are taken in index order: a chunk takes what the earlier chunks left of `need`.
    members, tie_bases = [], []
    for j, (_, _, need) in enumerate(thr):
        above, ties = counts[:, :, 2 * j], counts[:, :, 2 * j + 1]
        tb = _exclusive(ties)
        taken = jnp.clip(need[:, None] - tb, 0, ties)
        members.append(above + taken)
        tie_bases.append(tb)
    selected = members[0] - members[1] if nt > 1 else members[0]  # lower band ⊂ upper band
    bases = jnp.stack([_exclusive(selected), *tie_bases], axis=2)
    out = pl.pallas_call(
        functools.partial(_write_kernel, k=k, **common),
        out_shape=jax.ShapeDtypeStruct((rows, k + choice.compact_tile), I32),
        grid=(rows, nch),
        name="rankk_write",
        interpret=interpret,
        **params,
    )(x2d, t, bases)
    return out[:, :k]


# ----------------------------------------------------------------------------- entry


def select_indices_radix(x2d, k: int, kind: str, choice, *, interpret: bool):
    """Indices of the selected entries of each row of ``x2d`` (rows, n), ordered.

    Same contract as ``xla.select_indices``: Top-K descending, Bottom-K / Mid-K
    ascending, ties by increasing index. ``0 < k < n`` (the caller handles the rest).
    ``choice.sample`` is ignored here (the sampled path is ``sample.py``; ``dispatch.py``
    chooses between them).
    """
    _rows, n = x2d.shape
    targets = ((n - k) // 2 + k, (n - k) // 2) if kind == "mid" else (k,)
    if choice.multiblock:
        idx = _multiblock(x2d, k, kind, targets, choice, interpret)
    elif choice.filter_capacity and kind != "mid" and choice.tile < n:
        idx = _filtered(x2d, k, kind, choice, interpret)
    else:
        idx = _fused(x2d, k, kind, targets, choice, interpret)
    return order_survivors(x2d, idx, kind, choice.ordering)


def order_survivors(x2d, idx, kind: str, ordering: int):
    """Order survivors (given in index order) by decreasing kind key, ties by index.

    ``ordering = 0``: stable sort of the k keys. ``ordering = 1``: counting rank — each survivor's
    slot is the number of survivors before it in the order (O(k²) compares, no sort).
    """
    vals = jnp.take_along_axis(x2d, idx, axis=-1)
    key = kind_key(vals, kind)
    if ordering == 1:
        k = idx.shape[-1]
        i = lax.broadcasted_iota(I32, (k, k), 0)
        j = lax.broadcasted_iota(I32, (k, k), 1)
        kj, ki = key[:, None, :], key[:, :, None]
        before = (kj > ki) | ((kj == ki) & (j < i))
        rank = jnp.sum(before.astype(I32), axis=-1, dtype=I32)
        out = jnp.zeros_like(idx)
        return jax.vmap(lambda o, r, v: o.at[r].set(v, unique_indices=True))(out, rank, idx)
    _, out = lax.sort((~key, idx), dimension=1, num_keys=1, is_stable=True)
    return out
