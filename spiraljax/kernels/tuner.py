"""Offline Rank-K tuning: measure kernel variants into a table, and self-rewrite.

* ``tune`` times ``Choice`` candidates of the Pallas Rank-K path over a shape grid on the
  current device (``timing.time_variants``: compiled side by side, then timed one after
  another), checks every timed output against the XLA path (indices and value bits), and
  writes a table (``table.py``: schema, lookup) atomically.
* ``self_rewrite`` runs A/B trials of the incumbent plan against a candidate on real
  timings, feeds ``spiralk.ABTest`` and commits adopted rules to ``spiralk.HeurStore``;
  ``plan_rank`` reads them back (``source == "rewrite"``).

Nothing here runs at planning time. See docs/concepts/self-rewrite.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import itertools
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from spiraljax.kernels.choice import (
    MK1_MAX_K,
    RESIDENT_MAX,
    Choice,
    DeviceCaps,
    candidate_domain,
    choice_to_fields,
    fit_to_problem,
    fits_problem,
    normalize_kind,
)
from spiraljax.kernels.plan import default_choice, plan_rank
from spiraljax.kernels.table import SCHEMA, device_class, write_table
from spiraljax.kernels.timing import (
    COMPILE_SECONDS,
    MismatchError,
    Timer,
    random_inputs,
    reference_check,
    time_variants,
)

__all__ = [
    "RewriteResult",
    "default_candidates",
    "default_condition",
    "self_rewrite",
    "tune",
]

_GPU = ("gpu", "cuda", "rocm")
_DTYPES = ("float32", "bfloat16", "float16", "int32", "uint32")


# ----------------------------------------------------------------------------- tuning


def default_candidates(kind: str, rows: int, cols: int, k: int, caps: DeviceCaps) -> list[Choice]:
    """A compact candidate set around the built-in plan (deduplicated, legal for the
    problem): the built-in plan, the sampled Top/Bottom-K path at two sample sizes, then
    variants of the radix plan: digit widths, warps, stages, the resident / streamed /
    filtered / multi-block shapes with a few tiles, filter capacities and chunk counts,
    and both orderings."""
    kind = normalize_kind(kind)
    rep = dataclasses.replace
    builtin = default_choice(kind, rows, cols, k, caps)
    base = rep(builtin, sample=0)  # the radix variants below vary the radix plan
    out = [builtin]
    if kind != "mid":  # the sampled single-read path (pallas/sample.py) first
        for smp in (2048, 8192):
            if 4 * smp <= cols:
                out.append(rep(base, sample=smp, compact_tile=1024, warps=4))
    out.append(base)
    out += [rep(base, digit_bits=m) for m in (2, 3, 4)]
    out += [rep(base, warps=w) for w in (4, 16) if w in candidate_domain(caps)["warps"]]
    out += [rep(base, stages=s) for s in (1, 3)]
    out += [rep(base, ordering=m) for m in (0, 1) if m == 0 or k <= MK1_MAX_K]
    pow2 = max(256, 1 << (max(cols, 1) - 1).bit_length())
    # resident: the whole row kept in registers. Not beyond 2·RESIDENT_MAX: a 65536-entry
    # row is 512 registers per thread at 4 warps (spilled), and its kernel took 40–70 s
    # to compile against ≤ 7 s for any other candidate (benchmarks/kernel_ir.py)
    if pow2 <= 2 * RESIDENT_MAX:
        out += [
            rep(base, multiblock=False, tile=pow2, filter_capacity=0, chunks=1, digit_bits=m)
            for m in (2, 4)
        ]
    streamed = [t for t in (1024, 2048, 4096) if t < cols]
    for t in streamed:
        out.append(rep(base, multiblock=False, tile=t, chunks=1, compact_tile=min(1024, t)))
        if kind != "mid":
            out += [
                rep(
                    base,
                    multiblock=False,
                    tile=t,
                    chunks=1,
                    compact_tile=min(1024, t),
                    filter_capacity=f,
                )
                for f in (0, 4096, 16384)
            ]
    if streamed:
        t = streamed[-1] if cols >= 64 * streamed[-1] else streamed[0]
        want = max(1, (4 * caps.sm_count) // max(rows, 1))
        for ch in sorted({max(2, want // 4), max(2, want), min(1024, 4 * want)}):
            ch = min(1 << (ch.bit_length() - 1), 1024)
            out.append(
                rep(
                    base,
                    multiblock=True,
                    chunks=ch,
                    tile=t,
                    compact_tile=min(1024, t),
                    filter_capacity=0,
                )
            )
    legal = []
    for ch in dict.fromkeys(out):
        ch = fit_to_problem(ch, kind, k)
        try:
            legal.append(ch.validate(caps, k))
        except ValueError:
            continue
    return list(dict.fromkeys(legal))


def _versions() -> dict:
    import jax
    import jaxlib

    import spiraljax

    return {
        "spiraljax": spiraljax.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _require_device(allow_interpret: bool, what: str) -> bool:
    import jax

    backend = jax.default_backend()
    if backend in _GPU:
        return False
    if not allow_interpret:
        raise ValueError(
            f"{what}: the current device is {backend!r}: the Pallas kernels would run in "
            "interpret mode, whose timings say nothing about a GPU. Run on a GPU, or pass "
            "allow_interpret=True (--allow-interpret) for a tiny functional check."
        )
    return True


def _ranges(values: Sequence[int]) -> dict[int, tuple[int | None, int | None]]:
    vs = sorted(set(values))
    out = {}
    for i, v in enumerate(vs):
        lo = 0 if i == 0 else math.isqrt(vs[i - 1] * v) + 1
        hi = None if i == len(vs) - 1 else math.isqrt(v * vs[i + 1])
        out[v] = (lo, hi)
    return out


def tune(
    *,
    rows: Sequence[int] = (64, 1024),
    cols: Sequence[int] = (4096, 65536),
    ks: Sequence[int] = (16, 128),
    kinds: Sequence[str] = ("top",),
    dtypes: Sequence[str] = ("float32",),
    shapes: Sequence[tuple[int, int, int]] | None = None,
    caps: DeviceCaps | None = None,
    candidates: Callable | Sequence[Choice] | None = None,
    repeats: int = 15,
    batch: int = 5,
    warmup: int = 2,
    output: str | os.PathLike | None = None,
    allow_interpret: bool = False,
    timer: Timer | None = None,
    workers: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Measure Rank-K kernel variants over the grid ``rows × cols × ks`` (``0 < k < cols``)
    for every kind and dtype; returns the table (module docstring) and writes it to
    ``output`` atomically when given.

    Args:
      shapes: explicit ``(rows, cols, k)`` triples measured instead of the product grid
        (ranges are then built from the values each axis takes in the list).
      candidates: ``Choice`` list, or ``fn(kind, rows, cols, k, caps) -> list`` (default
        ``default_candidates``).
      repeats, batch, warmup: ``timing.time_calls`` settings.
      allow_interpret: permit a non-GPU device (Pallas interpret mode: a functional check,
        not a tuning).
      timer: ``timer(kind, inputs, k, choices, **kw) -> [(choice, ms, error)]``, default
        ``time_variants`` (the shape's variants compiled side by side, compiled
        functions kept so a later A/B trial or check of the same plan does not
        recompile); injectable.
      workers: variants compiled side by side by the default timer
        (``compile_variants``; default the CPU count − 1, at most 16).

    Every timed batch checks one output against the XLA path (indices and value bits); a
    variant that differs is excluded and listed under ``"mismatches"`` with a warning.
    """
    interpret = _require_device(allow_interpret, "tune")
    caps = caps or DeviceCaps.detect()
    timer = timer or functools.partial(time_variants, workers=workers)
    log = log or (lambda s: None)
    for name, v in (("repeats", repeats), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} must be an integer ≥ 1")
    for d in dtypes:
        if str(d) not in _DTYPES:
            raise ValueError(f"dtype={d!r} is not one of {_DTYPES}")
    kinds = [normalize_kind(kd) for kd in kinds]
    if shapes is not None:
        shapes = [tuple(s) for s in shapes]
        if not shapes or any(len(s) != 3 for s in shapes):
            raise ValueError(f"shapes={shapes!r} must be (rows, cols, k) triples")
        rows, cols, ks = ([s[i] for s in shapes] for i in range(3))
    for name, vs in (("rows", rows), ("cols", cols), ("ks", ks)):
        if not vs or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in vs):
            raise ValueError(f"{name}={list(vs)!r} must be positive integers")
    rr, cr, kr = _ranges(rows), _ranges(cols), _ranges(ks)
    entries, mismatches = [], []
    if shapes is None:
        shapes = list(itertools.product(sorted(set(rows)), sorted(set(cols)), sorted(set(ks))))
    for kind, dtype, (r, c, k) in itertools.product(kinds, dtypes, shapes):
        if k >= c:
            continue  # k == n is a sort (the XLA path on every backend)
        if callable(candidates):
            cands = list(candidates(kind, r, c, k, caps))
        elif candidates is not None:
            cands = [ch for ch in candidates if _legal(ch, caps, kind, k)]
        else:
            cands = default_candidates(kind, r, c, k, caps)
        builtin = default_choice(kind, r, c, k, caps)
        cands = list(dict.fromkeys([builtin, *cands]))
        t0 = time.perf_counter()
        xs = random_inputs(r, c, dtype, 2, seed=r * 7 + c * 3 + k)
        check = reference_check(kind, xs, k)
        res = timer(kind, xs, k, cands, reps=repeats, batch=batch, warmup=warmup, check=check)
        where = {"kind": kind, "dtype": str(dtype), "rows": r, "cols": c, "k": k}
        measured = []
        for ch, ms, err in res:
            if err and err.startswith("MismatchError"):
                mismatches.append({**where, "choice": dataclasses.asdict(ch), "error": err})
                warnings.warn(f"tune: {ch} on {where}: {err}", stacklevel=2)
                continue
            ms = ms if math.isfinite(ms) else None
            measured.append({"choice": dataclasses.asdict(ch), "ms": ms, "error": err})
        ok = sorted((m for m in measured if m["ms"] is not None), key=lambda m: m["ms"])
        if not ok:
            log(f"{where}: no variant ran")
            continue
        bms = next((m["ms"] for m in ok if m["choice"] == dataclasses.asdict(builtin)), None)
        ranges = {}
        for ax, rng_, v in (("rows", rr, r), ("cols", cr, c), ("k", kr, k)):
            ranges[f"{ax}_min"], ranges[f"{ax}_max"] = rng_[v]
        entries.append(
            {
                **where,
                **ranges,
                "sg": caps.subgroup,
                "choice": ok[0]["choice"],
                "ms": ok[0]["ms"],
                "builtin_ms": bms,
                "measured": ok + [m for m in measured if m["ms"] is None],
            }
        )
        compiled = sum(
            v
            for key, v in COMPILE_SECONDS.items()
            if key[:2] == (kind, k) and key[3:] == ((r, c), str(xs[0].dtype))
        )
        log(
            f"{where}: best {ok[0]['ms']:.4f} ms of {len(ok)} variants (built-in {bms} ms); "
            f"compilation {compiled:.1f} s summed over the variants, "
            f"{time.perf_counter() - t0:.1f} s wall for the shape"
        )
    import jax

    dev = jax.devices()[0]
    table = {
        "schema": SCHEMA,
        "device": {
            "platform": dev.platform,
            "device_kind": str(getattr(dev, "device_kind", dev.platform)),
            "class": device_class(dev),
        },
        "caps": dataclasses.asdict(caps),
        "sg": caps.subgroup,
        "interpret": interpret,
        "versions": _versions(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "batch": batch,
        "entries": entries,
        "mismatches": mismatches,
    }
    if output is not None:
        write_table(table, output)
    return table


def _legal(ch: Choice, caps, kind, k) -> bool:
    try:
        ch.validate(caps, k)
    except ValueError:
        return False
    return fits_problem(ch, kind, k)


# ----------------------------------------------------------------------------- self-rewrite


@dataclasses.dataclass(frozen=True)
class RewriteResult:
    """Outcome of ``self_rewrite``.

    ``status``: ``"adopted"``, ``"below_threshold"``, ``"collecting"`` (ran out of
    trials) or ``"incumbent_best"`` (no faster expressible candidate: nothing tested).
    ``rules``: the statements adopted; ``written``: how many were new in the store;
    ``plan_after``: ``plan_rank`` after the commit.
    """

    incumbent: Choice
    candidate: Choice | None
    status: str
    wins: int
    trials: int
    interval: tuple[float, float]
    rules: tuple[str, ...]
    written: int
    plan_after: object
    timings: tuple = ()


def default_condition(kind: str, rows: int, cols: int, k: int) -> str:
    """SpiralK condition scoping a rewrite rule to the problem's kind and power-of-two
    band of rows, cols and k (``2^⌊log2 x⌋ ≤ x < 2^(⌊log2 x⌋+1)``)."""
    parts = [f'kind == "{normalize_kind(kind)}k"']
    for var, v in (("r", rows), ("c", cols), ("k", k)):
        lo = 1 << (max(v, 1).bit_length() - 1)
        parts.append(f"{var} >= {lo} && {var} < {2 * lo}")
    return " && ".join(parts)


def _dsl(choice: Choice) -> dict:
    fields = choice_to_fields(choice)
    fields.pop("fcap")  # no field of the SpiralK language
    return fields


def self_rewrite(
    kind: str,
    rows: int,
    cols: int,
    k: int,
    *,
    candidate: Choice | None = None,
    candidates: Sequence[Choice] | None = None,
    incumbent: Choice | None = None,
    caps: DeviceCaps | None = None,
    store=None,
    dtype: str = "float32",
    trials: int = 16,
    min_trials: int = 8,
    weight: float = 1.0,
    cond: str | None = None,
    repeats: int = 5,
    batch: int = 2,
    allow_interpret: bool = False,
    timer: Timer | None = None,
) -> RewriteResult:
    """A/B-test a candidate plan against the incumbent on real timings; adopt it into the
    heur file when the Wilson lower bound of its win rate beats 1/2.

    1. ``incumbent`` defaults to ``plan_rank(kind, rows, cols, k, caps).choice``.
    2. ``candidate`` defaults to the fastest of ``candidates`` (default
       ``default_candidates``) in one timing sweep, among those that differ from the
       incumbent in SpiralK-expressible fields (``filter_capacity`` has no SpiralK field
       and must match the incumbent's).
    3. Up to ``trials`` trials, each timing both plans (alternating order) with every
       output checked against the XLA path; a trial is won when the candidate is strictly
       faster. ``spiralk.ABTest`` (``min_trials``, baseline 0.5, z = 1.96) decides.
    4. If adopted, ``ABTest.commit(store)`` appends ``soft(field, candidate, weight,
       cond)`` and ``soft(field, incumbent, -weight, cond)`` per changed field (``cond``:
       ``default_condition``) with provenance. ``store`` defaults to
       ``HeurStore()`` — the file ``plan_rank`` reads (``SPIRAL_HEUR_FILE``).

    ``weight`` must outweigh the soft rules that made the incumbent win, or the plan
    will not move. ``timer`` as in ``tune`` (default ``time_variants``).
    """
    from spiraljax.spiralk import ABTest, HeurStore

    kind = normalize_kind(kind)
    _require_device(allow_interpret, "self_rewrite")
    caps = caps or DeviceCaps.detect()
    timer = timer or time_variants
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < min_trials:
        raise ValueError(f"trials={trials!r} must be an integer ≥ min_trials={min_trials}")
    store = HeurStore() if store is None else store
    if incumbent is None:
        incumbent = plan_rank(kind, rows, cols, k, caps).choice
    incumbent.validate(caps, k)
    xs = random_inputs(rows, cols, dtype, 2, seed=rows * 7 + cols * 3 + k)
    check = reference_check(kind, xs, k)
    kw = dict(reps=repeats, batch=batch, check=check)
    timings = []
    if candidate is None:
        pool = (
            list(candidates)
            if candidates is not None
            else default_candidates(kind, rows, cols, k, caps)
        )
        pool = [c for c in dict.fromkeys([incumbent, *pool]) if _legal(c, caps, kind, k)]
        res = timer(kind, xs, k, pool, warmup=1, **kw)
        timings.append([(dataclasses.asdict(c), ms) for c, ms, _ in res])
        for ch, _ms, err in res:
            if err and err.startswith("MismatchError"):
                raise MismatchError(f"{ch}: {err}")
        for ch, ms, _err in sorted(res, key=lambda t: t[1]):
            if not math.isfinite(ms):
                break
            if ch == incumbent:
                break  # nothing measured faster than the incumbent
            if ch.filter_capacity == incumbent.filter_capacity and _dsl(ch) != _dsl(incumbent):
                candidate = ch
                break
        if candidate is None:
            plan = plan_rank(kind, rows, cols, k, caps)
            return RewriteResult(
                incumbent, None, "incumbent_best", 0, 0, (0.0, 1.0), (), 0, plan, tuple(timings)
            )
    candidate.validate(caps, k)
    if candidate.filter_capacity != incumbent.filter_capacity:
        raise ValueError(
            f"candidate.filter_capacity={candidate.filter_capacity} differs from "
            f"incumbent.filter_capacity={incumbent.filter_capacity}: filter_capacity has no "
            "SpiralK field, so a rule cannot express it"
        )
    ab = ABTest(
        _dsl(incumbent),
        _dsl(candidate),
        cond=cond if cond is not None else default_condition(kind, rows, cols, k),
        weight=weight,
        min_trials=min_trials,
    )
    for t in range(trials):
        pair = [incumbent, candidate] if t % 2 == 0 else [candidate, incumbent]
        res = timer(kind, xs, k, pair, warmup=1 if t == 0 else 0, **kw)
        ms = {}
        for ch, m, err in res:
            if err and err.startswith("MismatchError"):
                raise MismatchError(f"{ch}: {err}")
            ms[ch] = m
        timings.append((ms[incumbent], ms[candidate]))
        if not math.isfinite(ms[incumbent]):
            raise RuntimeError(f"self_rewrite: the incumbent {incumbent} failed to run")
        if math.isfinite(ms[candidate]):
            ab.record_timing(ms[incumbent] * 1e-3, ms[candidate] * 1e-3)
        else:
            ab.record(False)
        if ab.status == "adopted":
            break
    rules = tuple(ab.rules())
    written = ab.commit(
        store,
        kind=kind,
        rows=rows,
        cols=cols,
        k=k,
        dtype=str(dtype),
        device=device_class(),
        by="spiraljax.kernels.tuner.self_rewrite",
    )
    plan = plan_rank(kind, rows, cols, k, caps)
    return RewriteResult(
        incumbent, candidate, ab.status, ab.wins, ab.trials, ab.interval(), rules, written, plan,
        tuple(timings),
    )  # fmt: skip
