"""Shared pieces of the benchmark scripts: environment record, timing, result files."""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def version(name: str) -> str:
    """Version of ``name``: its distribution metadata, else the module's ``__version__``
    (a package carried to the GPU machine on PYTHONPATH has no dist-info), else ``"n/a"``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.import_module(name).__version__
        except (ImportError, AttributeError):
            return "n/a"


def environment() -> dict:
    """Device, versions and date, recorded with every result file."""
    import jax

    devices = jax.devices()
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "backend": jax.default_backend(),
        "device": devices[0].device_kind,
        "device_count": len(devices),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {
            name: version(name) for name in ("spiraljax", "jax", "jaxlib", "numpy", "optax")
        },
    }


def median_time(fn: Callable[[], object], *, repeats: int = 20, warmup: int = 2) -> float:
    """Median wall seconds of ``fn()``; ``fn`` must block until its result is ready."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_results(name: str, payload: dict, markdown: str, *, out: Path = RESULTS) -> None:
    """Write ``<name>.json`` and ``<name>.md`` under ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(payload, indent=2) + "\n"), (".md", markdown)):
        target = out / f"{name}{suffix}"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
