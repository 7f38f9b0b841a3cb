"""Rank-K tuner: measured tables of kernel variants, their lookup, and the self-rewrite driver.

* :func:`tune` times ``Choice`` candidates of the Pallas Rank-K path over a shape grid
  on the current device (:func:`time_variants`: compiled side by side, then timed one
  after another), checks every timed output against the XLA path (indices and value
  bits), and writes a JSON table atomically.
* :func:`choose` looks a problem up in a table (the containing rows/cols/k range, else the
  nearest measured shape); with no table given it reads ``SPIRAL_HEUR_TABLE`` or the
  table shipped in ``spiraljax/kernels/tables/<device class>.json``, and returns ``None``
  when there is none (no table is shipped before one has been measured on that device).
* :func:`self_rewrite` runs A/B trials of the incumbent plan against a candidate on real
  timings, feeds ``spiralk.ABTest`` and commits adopted rules to ``spiralk.HeurStore``;
  ``plan_rank`` reads them back (``source == "rewrite"``).

Table schema (``"schema": "spiraljax.rankk-table/1"``)::

    {
      "schema": "spiraljax.rankk-table/1",
      "device": {"platform": "gpu", "device_kind": "NVIDIA H200", "class": "h200"},
      "caps": {DeviceCaps fields}, "sg": true, "interpret": false,
      "versions": {"spiraljax": ..., "jax": ..., "jaxlib": ..., "python": ...},
      "date": "2026-11-21T13:00:00+00:00", "repeats": 15, "batch": 5,
      "entries": [
        {"kind": "top", "dtype": "float32", "rows": 1024, "cols": 65536, "k": 128,
         "rows_min": 363, "rows_max": null, "cols_min": 23171, "cols_max": 185363,
         "k_min": 46, "k_max": 362, "sg": true,
         "choice": {Choice fields}, "ms": 0.123, "builtin_ms": 0.150,
         "measured": [{"choice": {...}, "ms": 0.123, "error": null}, ...]}
      ],
      "mismatches": [{"kind": ..., "rows": ..., "choice": {...}, "error": "..."}]
    }

Ranges are inclusive; ``null`` is unbounded. A grid axis value ``v_i`` owns the integers
between the geometric midpoints with its neighbours (the first from 0, the last
unbounded), so a full grid covers every problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import itertools
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from spiraljax.kernels.plan import (
    MK1_MAX_K,
    RESIDENT_MAX,
    TABLE_ENV,
    Choice,
    DeviceCaps,
    candidate_domain,
    choice_to_fields,
    default_choice,
    normalize_kind,
    plan_rank,
)

__all__ = [
    "SCHEMA",
    "TABLE_DIR",
    "RewriteResult",
    "choose",
    "compile_variants",
    "default_candidates",
    "default_table_path",
    "device_class",
    "load_table",
    "lookup",
    "self_rewrite",
    "time_variants",
    "tune",
    "write_table",
]

SCHEMA = "spiraljax.rankk-table/1"
TABLE_DIR = Path(__file__).resolve().parent / "tables"
_GPU = ("gpu", "cuda", "rocm")
_DTYPES = ("float32", "bfloat16", "float16", "int32", "uint32")
_AXES = ("rows", "cols", "k")


class MismatchError(AssertionError):
    """A kernel variant's output differs from the XLA path."""


# ----------------------------------------------------------------------------- tables


def device_class(device=None) -> str:
    """Short name of a device model for table files: ``"h200"``, ``"h100"``, ``"cpu"``.

    The lower-cased ``device_kind`` without the vendor, first word, non-alphanumerics
    removed (``"NVIDIA H100 80GB HBM3"`` → ``"h100"``).
    """
    if device is None:
        import jax

        device = jax.devices()[0]
    if device.platform == "cpu":
        return "cpu"
    kind = str(getattr(device, "device_kind", device.platform)).lower()
    words = [w for w in re.split(r"[\s_]+", kind) if w not in ("nvidia", "amd", "tesla", "")]
    name = re.sub(r"[^a-z0-9]", "", words[0]) if words else ""
    return name or device.platform


def default_table_path(device_cls: str | None = None) -> Path | None:
    """``SPIRAL_HEUR_TABLE`` if set, else ``tables/<device class>.json`` when shipped,
    else ``None``."""
    env = os.environ.get(TABLE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    path = TABLE_DIR / f"{device_cls or device_class()}.json"
    return path if path.is_file() else None


def _check_range(name, lo, hi, where):
    for v in (lo, hi):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"{where}: {name} bound {v!r} must be a non-negative integer or null")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{where}: {name}_min={lo} exceeds {name}_max={hi}")


def validate_table(table, name: str = "table") -> dict:
    """Check a table against the schema; returns it. ``ValueError`` naming ``name``."""
    if not isinstance(table, dict) or table.get("schema") != SCHEMA:
        got = table.get("schema") if isinstance(table, dict) else type(table).__name__
        raise ValueError(f"{name}: schema={got!r}, expected {SCHEMA!r}")
    entries = table.get("entries")
    if not isinstance(entries, list):
        raise ValueError(f"{name}: 'entries' must be a list")
    fields = {f.name for f in dataclasses.fields(Choice)}
    for i, e in enumerate(entries):
        where = f"{name}: entries[{i}]"
        if not isinstance(e, dict):
            raise ValueError(f"{where} must be an object")
        try:
            normalize_kind(e.get("kind"))
        except ValueError:
            raise ValueError(f"{where}: kind={e.get('kind')!r} is not top, bottom or mid") from None
        for ax in _AXES:
            _check_range(ax, e.get(f"{ax}_min"), e.get(f"{ax}_max"), where)
            if isinstance(e.get(ax), bool) or not isinstance(e.get(ax), int):
                raise ValueError(f"{where}: {ax}={e.get(ax)!r} must be an integer")
        ch = e.get("choice")
        if not isinstance(ch, dict) or set(ch) - fields:
            raise ValueError(f"{where}: choice={ch!r} must hold Choice fields {sorted(fields)}")
        try:
            Choice(**ch).validate(None)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: illegal choice {ch}: {err}") from None
        if not (isinstance(e.get("ms"), int | float) and math.isfinite(e["ms"])):
            raise ValueError(f"{where}: ms={e.get('ms')!r} must be a finite number")
    return table


@functools.cache
def _load(path: str, mtime_ns: int, size: int) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"tuned table {path} is not valid JSON: {err}") from None
    return validate_table(data, f"tuned table {path}")


def load_table(path: str | os.PathLike) -> dict:
    """Read and validate a table file (cached per path, mtime and size).

    Raises:
      FileNotFoundError: no such file. ValueError: not a valid table (message names it).
    """
    path = Path(path).expanduser()
    st = os.stat(path)
    return _load(str(path), st.st_mtime_ns, st.st_size)


def _within(v, lo, hi) -> bool:
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def _distance(e, rows, cols, k) -> float:
    return sum(
        abs(math.log2(q + 1) - math.log2(e[ax] + 1))
        for ax, q in zip(_AXES, (rows, cols, k), strict=True)
    )


def lookup(table: dict, rows: int, cols: int, k: int, sg, *, kind="top", dtype=None):
    """The table entry for a problem: the nearest (in log2 distance to its measured shape)
    of the entries whose ranges contain it, else the nearest entry; ``None`` when the
    table has no entry for ``kind`` / ``dtype`` / ``sg``. ``dtype=None`` accepts any,
    preferring float32 at equal distance."""
    kind = normalize_kind(kind)
    pool = [
        e
        for e in table["entries"]
        if normalize_kind(e["kind"]) == kind
        and (dtype is None or e.get("dtype") == str(np.dtype(dtype)))
        and (e.get("sg") is None or bool(e["sg"]) == bool(sg))
    ]
    if not pool:
        return None
    inside = [
        e
        for e in pool
        if all(
            _within(q, e.get(f"{ax}_min"), e.get(f"{ax}_max"))
            for ax, q in zip(_AXES, (rows, cols, k), strict=True)
        )
    ]
    return min(
        inside or pool,
        key=lambda e: (_distance(e, rows, cols, k), e.get("dtype") != "float32"),
    )


def _resolve(table):
    if table is None:
        path = default_table_path()
        return None if path is None else load_table(path)
    if isinstance(table, str | os.PathLike):
        return load_table(table)
    return validate_table(table)


def choose(rows: int, cols: int, k: int, sg, table=None, *, kind="top", dtype=None):
    """The tuned ``Choice`` for a problem, or ``None`` (no table, or no entry for it).

    Args:
      rows, cols, k: problem size. sg: subgroup/warp available (``DeviceCaps.subgroup``).
      table: a table dict, a path, or ``None`` for :func:`default_table_path` (none is
        shipped for a device class until a table was measured on it).
      kind: ``"top"``, ``"bottom"`` or ``"mid"``; dtype: restrict to entries of a dtype.
    """
    t = _resolve(table)
    if t is None:
        return None
    e = lookup(t, rows, cols, k, sg, kind=kind, dtype=dtype)
    return None if e is None else Choice(**e["choice"])


def _caps_match(table: dict, caps: DeviceCaps) -> bool:
    tc = table.get("caps") or {}
    return all(tc.get(f) == getattr(caps, f) for f in ("backend", "sm_count", "lane_width"))


def table_choice(kind: str, rows: int, cols: int, k: int, caps: DeviceCaps) -> Choice | None:
    """The default table's entry for ``plan_rank``: only from a table measured on a
    device with the same caps, adapted to the problem (``mk=0`` above ``MK1_MAX_K``, no
    ``fcap`` for Mid-K). A set ``SPIRAL_HEUR_TABLE`` that cannot be read is an error
    (a warning under ``SPIRAL_HEUR_ON_ERROR=warn``)."""
    from spiraljax.spiralk.config import on_error_mode, report_problem

    try:
        table = _resolve(None)
    except (OSError, ValueError) as err:
        report_problem(
            ValueError(f"{TABLE_ENV}: {err}"), on_error_mode(), f"tuned table ({TABLE_ENV})"
        )
        return None
    if table is None or not _caps_match(table, caps):
        return None
    e = lookup(table, rows, cols, k, caps.subgroup, kind=kind)
    if e is None:
        return None
    ch = Choice(**e["choice"])
    if ch.mk == 1 and k > MK1_MAX_K:
        ch = dataclasses.replace(ch, mk=0)
    if normalize_kind(kind) == "mid" and (ch.fcap or ch.sample):
        ch = dataclasses.replace(ch, fcap=0, sample=0)
    return ch


def write_table(table: dict, path: str | os.PathLike) -> Path:
    """Validate and write a table atomically (temporary file in the same folder,
    ``fsync``, ``os.replace``)."""
    validate_table(table, "table to write")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(table, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


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
                out.append(rep(base, sample=smp, ctile=1024, warps=4))
    out.append(base)
    out += [rep(base, mkd=m) for m in (2, 3, 4)]
    out += [rep(base, warps=w) for w in (4, 16) if w in candidate_domain(caps)["warps"]]
    out += [rep(base, stages=s) for s in (1, 3)]
    out += [rep(base, mk=m) for m in (0, 1) if m == 0 or k <= MK1_MAX_K]
    pow2 = max(256, 1 << (max(cols, 1) - 1).bit_length())
    # resident: the whole row kept in registers. Not beyond 2·RESIDENT_MAX: a 65536-entry
    # row is 512 registers per thread at 4 warps (spilled), and its kernel took 40–70 s
    # to compile against ≤ 7 s for any other candidate (benchmarks/kernel_ir.py)
    if pow2 <= 2 * RESIDENT_MAX:
        out += [rep(base, use_2ce=False, tile=pow2, fcap=0, chunks=1, mkd=m) for m in (2, 4)]
    streamed = [t for t in (1024, 2048, 4096) if t < cols]
    for t in streamed:
        out.append(rep(base, use_2ce=False, tile=t, chunks=1, ctile=min(1024, t)))
        if kind != "mid":
            out += [
                rep(base, use_2ce=False, tile=t, chunks=1, ctile=min(1024, t), fcap=f)
                for f in (0, 4096, 16384)
            ]
    if streamed:
        t = streamed[-1] if cols >= 64 * streamed[-1] else streamed[0]
        want = max(1, (4 * caps.sm_count) // max(rows, 1))
        for ch in sorted({max(2, want // 4), max(2, want), min(1024, 4 * want)}):
            ch = min(1 << (ch.bit_length() - 1), 1024)
            out.append(rep(base, use_2ce=True, chunks=ch, tile=t, ctile=min(1024, t), fcap=0))
    legal = []
    for ch in dict.fromkeys(out):
        if kind == "mid" and (ch.fcap or ch.sample):
            ch = rep(ch, fcap=0, sample=0)
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


def _inputs(rows, cols, dtype, count, seed):
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype) if dtype != "bfloat16" else jnp.bfloat16
    out = []
    for _ in range(count):
        if np.issubdtype(np.dtype(dt), np.integer):
            info = np.iinfo(np.dtype(dt))
            a = rng.integers(info.min, info.max, size=(rows, cols), dtype=np.int64).astype(dt)
        else:
            a = rng.standard_normal((rows, cols)).astype(np.float32)
        out.append(jnp.asarray(a, dtype=dt))
    return out


def _reference_check(kind, inputs, k):
    """``check(out, i)`` comparing a kernel output with the XLA path, bit for bit."""
    import jax

    from spiraljax.kernels import rank

    op = {"top": rank.topk, "bottom": rank.bottomk, "mid": rank.midk}[kind]
    ref = jax.jit(lambda x: op(x, k, implementation="xla"))
    refs = []
    for x in inputs:
        v, i = ref(x)
        refs.append((np.asarray(i), np.ascontiguousarray(np.asarray(v)).view(np.uint8)))

    def check(out, i):
        v, idx = out
        ri, rv = refs[i]
        if not np.array_equal(np.asarray(idx), ri) or not np.array_equal(
            np.ascontiguousarray(np.asarray(v)).view(np.uint8), rv
        ):
            raise MismatchError(f"{kind}-k output differs from the XLA path (input {i})")

    return check


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


Timer = Callable[..., list]


@functools.cache
def _kernel_fn(kind: str, k: int, choice: Choice):
    import jax

    from spiraljax.kernels import rank

    op = {"top": rank.topk, "bottom": rank.bottomk, "mid": rank.midk}[kind]
    return jax.jit(lambda x: op(x, k, implementation="pallas", choice=choice))


#: seconds spent compiling each (kind, k, choice, input shape, dtype), filled by
#: :func:`compile_variants`; ``tune`` logs their sum per shape.
COMPILE_SECONDS: dict = {}
_COMPILED: dict = {}


def _compile_workers() -> int:
    return max(1, min(16, (os.cpu_count() or 2) - 1))


def compile_variants(
    kind: str, x, k: int, choices: Sequence[Choice], *, workers: int | None = None
) -> dict:
    """Ahead-of-time compile the Pallas Rank-K path of every ``Choice`` for inputs shaped
    like ``x``, ``workers`` at a time; returns ``{choice: compiled function or exception}``.

    Compiled functions are kept per (kind, k, choice, shape, dtype), so a later sweep or
    A/B trial of the same plan does not compile again (failures are not kept). Lowering
    (Python) runs in this thread; the compilations run in a thread pool — XLA releases the
    GIL while it compiles, and on a GPU host most of a variant's compile time is its Triton
    kernels', so ``workers`` variants compile side by side (default: the CPU count − 1, at
    most 16).
    """
    from concurrent.futures import ThreadPoolExecutor

    workers = _compile_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be an integer ≥ 1")
    where = (tuple(x.shape), str(x.dtype))
    todo, out = [], {}
    for ch in dict.fromkeys(choices):
        key = (kind, k, ch, *where)
        if key in _COMPILED:
            out[ch] = _COMPILED[key]
            continue
        try:
            todo.append((ch, key, _kernel_fn(kind, k, ch).lower(x)))
        except Exception as err:  # a variant that does not lower must not end the sweep
            out[ch] = err

    def build(lowered):
        t0 = time.perf_counter()
        try:
            return lowered.compile(), time.perf_counter() - t0
        except Exception as err:
            return err, time.perf_counter() - t0

    if todo:
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            built = list(pool.map(build, [low for _, _, low in todo]))
        for (ch, key, _), (fn, secs) in zip(todo, built, strict=True):
            out[ch] = fn
            if not isinstance(fn, Exception):  # failures are not kept: tried again next time
                _COMPILED[key] = fn
                COMPILE_SECONDS[key] = secs
    return out


def time_variants(
    kind: str,
    inputs: Sequence,
    k: int,
    choices: Sequence[Choice],
    *,
    workers: int | None = None,
    **kw,
) -> list:
    """``timing.time_calls`` of every ``Choice`` on the same inputs, after compiling the
    variants side by side (:func:`compile_variants`; compiled functions are reused across
    calls — A/B trials time the same two plans many times).

    Returns ``[(choice, ms, error)]`` sorted by time; a variant that fails to lower,
    compile or run gets ``inf`` and its error.
    """
    from spiraljax.kernels.timing import time_calls

    fns = compile_variants(kind, inputs[0], k, choices, workers=workers)
    out = []
    for ch in choices:
        fn = fns[ch]
        try:
            if isinstance(fn, Exception):
                raise fn
            out.append((ch, time_calls(fn, inputs, **kw), None))
        except Exception as err:  # a variant the compiler rejects must not end the trial
            out.append((ch, math.inf, f"{type(err).__name__}: {err}"[:300]))
    return sorted(out, key=lambda t: t[1])


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
        :func:`default_candidates`).
      repeats, batch, warmup: ``timing.time_calls`` settings.
      allow_interpret: permit a non-GPU device (Pallas interpret mode: a functional check,
        not a tuning).
      timer: ``timer(kind, inputs, k, choices, **kw) -> [(choice, ms, error)]``, default
        :func:`time_variants` (the shape's variants compiled side by side, compiled
        functions kept so a later A/B trial or check of the same plan does not
        recompile); injectable.
      workers: variants compiled side by side by the default timer
        (:func:`compile_variants`; default the CPU count − 1, at most 16).

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
        xs = _inputs(r, c, dtype, 2, seed=r * 7 + c * 3 + k)
        check = _reference_check(kind, xs, k)
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
    return not (kind == "mid" and (ch.fcap or ch.sample))


# ----------------------------------------------------------------------------- self-rewrite


@dataclasses.dataclass(frozen=True)
class RewriteResult:
    """Outcome of :func:`self_rewrite`.

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
    fields.pop("fcap")  # no SpiralK field
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
       :func:`default_candidates`) in one timing sweep, among those that differ from the
       incumbent in SpiralK-expressible fields (``fcap`` has no SpiralK field and must
       match the incumbent's).
    3. Up to ``trials`` trials, each timing both plans (alternating order) with every
       output checked against the XLA path; a trial is won when the candidate is strictly
       faster. ``spiralk.ABTest`` (``min_trials``, baseline 0.5, z = 1.96) decides.
    4. If adopted, ``ABTest.commit(store)`` appends ``soft(field, candidate, weight,
       cond)`` and ``soft(field, incumbent, -weight, cond)`` per changed field (``cond``:
       :func:`default_condition`) with provenance. ``store`` defaults to
       ``HeurStore()`` — the file ``plan_rank`` reads (``SPIRAL_HEUR_FILE``).

    ``weight`` must outweigh the soft rules that made the incumbent win, or the plan
    will not move. ``timer`` as in :func:`tune` (default :func:`time_variants`).
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
    xs = _inputs(rows, cols, dtype, 2, seed=rows * 7 + cols * 3 + k)
    check = _reference_check(kind, xs, k)
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
            if ch.fcap == incumbent.fcap and _dsl(ch) != _dsl(incumbent):
                candidate = ch
                break
        if candidate is None:
            plan = plan_rank(kind, rows, cols, k, caps)
            return RewriteResult(
                incumbent, None, "incumbent_best", 0, 0, (0.0, 1.0), (), 0, plan, tuple(timings)
            )
    candidate.validate(caps, k)
    if candidate.fcap != incumbent.fcap:
        raise ValueError(
            f"candidate.fcap={candidate.fcap} differs from incumbent.fcap={incumbent.fcap}: "
            "fcap has no SpiralK field, so a rule cannot express it"
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
