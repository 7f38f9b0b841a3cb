"""Tuned Rank-K tables: schema, device class, load, lookup and atomic write.

A table (written by ``spiraljax tune``, see ``tuner.py``) lists, per measured problem, the
fastest ``Choice`` and the ranges of problems it stands for. ``choose`` looks a problem up
(the containing rows/cols/k range, else the nearest measured shape); with no table given
it reads ``SPIRAL_HEUR_TABLE`` or the table shipped in
``spiraljax/kernels/tables/<device class>.json``, and returns ``None`` when there is none
(no table is shipped before one has been measured on that device). ``table_choice`` is
the entry the planner (``plan.py``) offers to SpiralK's consensus.

Table schema (``"schema": "spiraljax.rankk-table/2"``; ``/2`` spells the ``Choice``
fields with their Python names, ``/1`` used the SpiralK short forms)::

    {
      "schema": "spiraljax.rankk-table/2",
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
import functools
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from spiraljax.kernels.choice import Choice, DeviceCaps, fit_to_problem, normalize_kind
from spiraljax.spiralk.config import (
    TABLE_ENV,
    on_error_mode,
    report_problem,
    table_path_from_env,
)

__all__ = [
    "SCHEMA",
    "TABLE_DIR",
    "choose",
    "default_table_path",
    "device_class",
    "load_table",
    "lookup",
    "table_choice",
    "validate_table",
    "write_table",
]

SCHEMA = "spiraljax.rankk-table/2"
TABLE_DIR = Path(__file__).resolve().parent / "tables"
_AXES = ("rows", "cols", "k")


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
    env = table_path_from_env()
    if env is not None:
        return env
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
      table: a table dict, a path, or ``None`` for ``default_table_path`` (none is
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
    device with the same caps, adapted to the problem (``ordering=0`` above ``MK1_MAX_K``, no
    ``filter_capacity`` for Mid-K). A set ``SPIRAL_HEUR_TABLE`` that cannot be read is an error
    (a warning under ``SPIRAL_HEUR_ON_ERROR=warn``)."""
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
    return fit_to_problem(Choice(**e["choice"]), kind, k)


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
