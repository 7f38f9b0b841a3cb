"""Z-space encoder throughput: LanguageWaveEncoder (FFT, fixed width) vs the seed's O(N²) DFT.

For text lengths N = 10 … 10⁶ this measures, on the default JAX device:

* ``encoder_core``  — ``z_space_from_codes`` on one pre-padded text (jit, on device);
* ``encoder_text``  — ``encode_z_space(text)`` end to end (str → code points → device → point);
* ``encoder_batch`` — ``encode_batch`` of B texts of length N (B·N ≈ 2²⁰ characters, B ≤ 256),
  throughput counted over all B·N characters;
* ``seed_fft``      — the seed's full spectrum (N bins) of the same signal by ``jnp.fft.fft``;
* ``seed_dft``      — the seed's O(N²) direct DFT X_k = Σ_n x_n e^{−2πikn/N} (as the seed code
  computes it, here vectorised in blocks of rows on the device), for N ≤ 10⁴ only.

Throughput is characters per second (best of ≥ 3 repeats, after a compile/warm-up call). The
script fits the slope of log(time) against log(N) over the largest lengths, so the O(N log N)
(≈ linear) vs O(N²) scaling is visible in the table. Device-agnostic: run it unchanged on a
GPU (``JAX_PLATFORMS=cuda``). Writes ``benchmarks/results/zspace.{md,json}``.

Usage: ``python benchmarks/zspace.py [--quick] [--dim 64] [--dtype float32] [--out DIR]``
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.zspace import LanguageWaveEncoder, bucket_length, z_space_from_codes

LENGTHS = [10, 100, 1_000, 10_000, 100_000, 1_000_000]
DFT_MAX = 10_000
BATCH_CHARS = 1 << 20


def _timeit(fn, *, min_time: float = 0.5, max_reps: int = 50, min_reps: int = 3) -> float:
    """Best (minimum) wall time of ``fn()`` (which must block), after one warm-up call.

    The minimum is the least noisy estimate of the intrinsic cost on a shared machine.
    """
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (
        time.perf_counter() - start < min_time and len(times) < max_reps
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _text(n: int, rng: np.random.Generator) -> str:
    # Real-looking text: printable ASCII words with some non-ASCII code points mixed in.
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz     ,.éü日本🙂"))
    return "".join(rng.choice(alphabet, size=n))


def _seed_signal(codes: jax.Array, temperature: float, dtype) -> jax.Array:
    n = codes.shape[-1]
    pos = jnp.arange(n, dtype=dtype)
    return temperature * (
        jnp.remainder(codes, 1024).astype(dtype) / 1024 + jnp.abs(jnp.sin((pos + 1) / n))
    )


def _make_seed_dft(n: int, dtype, block: int = 256):
    """The seed's direct DFT, all N bins, O(N²): rows of e^{−2πikn/N} built block by block."""
    idx = jnp.arange(n, dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
    nblocks = -(-n // block)
    ks = jnp.arange(nblocks * block).reshape(nblocks, block)

    @jax.jit
    def dft(codes):
        x = _seed_signal(codes, 0.5, dtype)

        def rows(k):
            # (k·n mod N) keeps the angle exact for large k·n, as a careful O(N²) DFT would.
            phase = (k[:, None] * idx[None, :]) % n
            ang = (-2 * jnp.pi / n) * phase.astype(dtype)
            return jnp.stack([jnp.cos(ang) @ x, jnp.sin(ang) @ x], -1)

        out = jax.lax.map(rows, ks).reshape(-1, 2)[:n]
        return jax.lax.complex(out[:, 0], out[:, 1])

    return dft


def run(args: argparse.Namespace) -> dict:
    dtype = jnp.dtype(args.dtype)
    rng = np.random.default_rng(0)
    lengths = [n for n in LENGTHS if n <= args.max_n]
    enc = LanguageWaveEncoder(curvature=-1.0, temperature=0.5, dim=args.dim, dtype=dtype)
    rows = []
    for n in lengths:
        text = _text(n, rng)
        codes = np.zeros((1, bucket_length(n)), np.int32)
        codes[0, :n] = [ord(c) for c in text]
        codes_d = jax.device_put(codes)
        lens_d = jax.device_put(np.array([n], np.int32))

        def core(codes_d=codes_d, lens_d=lens_d):
            z_space_from_codes(
                codes_d, lens_d, curvature=-1.0, temperature=0.5, dim=args.dim, dtype=dtype
            ).block_until_ready()

        row = {"n": n, "padded_length": int(codes.shape[1])}
        row["encoder_core_s"] = _timeit(core)
        row["encoder_text_s"] = _timeit(
            lambda text=text: enc.encode_z_space(text).block_until_ready()
        )

        batch = max(1, min(256, BATCH_CHARS // n))
        texts = [_text(n, rng) for _ in range(batch)]
        row["batch"] = batch
        row["encoder_batch_s"] = _timeit(
            lambda texts=texts: enc.encode_batch(texts).block_until_ready(), min_reps=2
        )

        seed_codes = jax.device_put(codes[:, :n])
        seed_fft = jax.jit(lambda c: jnp.fft.fft(_seed_signal(c, 0.5, dtype)))
        row["seed_fft_s"] = _timeit(lambda: seed_fft(seed_codes).block_until_ready())
        if n <= DFT_MAX:
            dft = _make_seed_dft(n, dtype)
            row["seed_dft_s"] = _timeit(lambda dft=dft: dft(seed_codes[0]).block_until_ready())
            # Sanity: the O(N²) DFT and the FFT compute the same spectrum.
            ref = np.asarray(seed_fft(seed_codes)[0])
            got = np.asarray(dft(seed_codes[0]))
            row["seed_dft_rel_err_vs_fft"] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        else:
            row["seed_dft_s"] = None
        for key in ("encoder_core", "encoder_text", "seed_fft", "seed_dft"):
            t = row[f"{key}_s"]
            row[f"{key}_chars_per_s"] = None if t is None else n / t
        row["encoder_batch_chars_per_s"] = batch * n / row["encoder_batch_s"]
        rows.append(row)
        print(
            f"N={n:>8}  core {row['encoder_core_chars_per_s']:.3g} ch/s  "
            f"text {row['encoder_text_chars_per_s']:.3g}  batch(B={batch}) "
            f"{row['encoder_batch_chars_per_s']:.3g}  seed FFT {row['seed_fft_chars_per_s']:.3g}  "
            f"seed DFT {row['seed_dft_chars_per_s'] or float('nan'):.3g}",
            flush=True,
        )

    def slope(key: str, lo: int) -> float | None:
        pts = [(r["n"], r[key]) for r in rows if r[key] is not None and r["n"] >= lo]
        if len(pts) < 2:
            return None
        x = np.log([p[0] for p in pts])
        y = np.log([p[1] for p in pts])
        return float(np.polyfit(x, y, 1)[0])

    dev = jax.devices()[0]
    return {
        "benchmark": "zspace_encoder",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": importlib.metadata.version("jaxlib"),
            "numpy": np.__version__,
        },
        "host": {"machine": platform.machine(), "cpus": __import__("os").cpu_count()},
        "config": {"dim": args.dim, "dtype": dtype.name, "batch_chars": BATCH_CHARS},
        "rows": rows,
        "scaling_slopes": {
            # log-log slope of time vs N over N ≥ 10⁴ (DFT: N ≥ 10³); 1 ≈ linear, 2 = quadratic.
            "encoder_core": slope("encoder_core_s", 10_000),
            "seed_fft": slope("seed_fft_s", 10_000),
            "seed_dft": slope("seed_dft_s", 1_000),
        },
    }


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:.3g}{unit}"


def to_markdown(res: dict) -> str:
    d = res["device"]
    v = res["versions"]
    lines = [
        "## Z-space encoder throughput (characters/s)",
        "",
        f"Device: {d['platform']} / {d['kind']} ({d['count']} device(s)); host "
        f"{res['host']['machine']}, {res['host']['cpus']} CPUs. jax {v['jax']}, numpy "
        f"{v['numpy']}, Python {v['python']}. dim={res['config']['dim']}, "
        f"{res['config']['dtype']}. {res['date']}.",
        "",
        "`core`: `z_space_from_codes` on one pre-padded text (device only); `text`: "
        "`encode_z_space(str)` end to end; `batch`: `encode_batch` of B texts of length N; "
        "`seed FFT`: the seed's full N-bin spectrum by `jnp.fft.fft`; `seed DFT`: the seed's "
        "O(N²) direct DFT (N ≤ 10⁴). Best of ≥ 3 repeats after warm-up.",
        "",
        "| N | core | text | batch (B) | seed FFT | seed DFT (O(N²)) | core time | DFT time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['n']:,} | {_fmt(r['encoder_core_chars_per_s'])} | "
            f"{_fmt(r['encoder_text_chars_per_s'])} | "
            f"{_fmt(r['encoder_batch_chars_per_s'])} ({r['batch']}) | "
            f"{_fmt(r['seed_fft_chars_per_s'])} | {_fmt(r['seed_dft_chars_per_s'])} | "
            f"{_fmt(r['encoder_core_s'] * 1e3, ' ms')} | "
            f"{_fmt(None if r['seed_dft_s'] is None else r['seed_dft_s'] * 1e3, ' ms')} |"
        )
    s = res["scaling_slopes"]
    lines += [
        "",
        f"log–log slope of time vs N: encoder core {_fmt(s['encoder_core'])} (N ≥ 10⁴), seed FFT "
        f"{_fmt(s['seed_fft'])} (N ≥ 10⁴), seed DFT {_fmt(s['seed_dft'])} (N ≥ 10³); "
        "1 ≈ O(N log N) at these sizes, 2 = O(N²).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="lengths up to 10⁴ only")
    p.add_argument("--max-n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="", help="suffix for the output files (e.g. _gpu)")
    args = p.parse_args(argv)
    if args.quick:
        args.max_n = min(args.max_n, 10_000)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    res = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(res)
    (out / f"zspace{args.tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / f"zspace{args.tag}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
