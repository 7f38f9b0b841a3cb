r"""Token-free text encoder into the Poincaré ball ("Z-space"); see docs/concepts/zspace.md.

A text of N Unicode code points ch₀ … ch_{N−1} becomes the seed's signal

    x_n = T · ( (ord(ch_n) mod 1024)/1024 + |sin((n+1)/N)| ),   n = 0 … N−1,

(T the temperature), and x_n = 0 outside [0, N). With P = ``dim`` and M = P/2 the encoder
reads the spectrum of x at the M fixed normalised frequencies f_j = j/P, j = 0 … M−1 (cycles
per character, covering [0, ½); frequencies above ½ mirror them for a real signal):

* **amplitude** — the root mean square, over every window of P consecutive characters
  sliding across the text (zero-padded at both ends, N + P − 1 windows, divided by N), of the
  window's normalised Fourier coefficient at f_j:

      A_j² = (1/N) Σ_{s=−(P−1)}^{N−1} | (1/P) Σ_{t=0}^{P−1} x_{s+t} e^{−2πi f_j t} |²
           = (1/(N·P)) Σ_{|τ|<P} (1 − |τ|/P) · r(τ) · e^{−2πi f_j τ},

  with r(τ) = Σ_n x_n x_{n+τ} the autocorrelation. Equivalently A_j² is the text's
  periodogram |X(f)|²/N pooled with a Fejér window of width 1/P around f_j: a smoothed
  (Bartlett / Blackman–Tukey) power spectrum, ≥ 0 by construction and consistent as N grows.
  A constant signal c gives A_0 → c.
* **phase** — φ_j = arg X(f_j) of the whole text's spectrum X(f) = Σ_n x_n e^{−2πifn}
  (atan2(0, 0) = 0).

``encode_wave`` returns W_j = A_j·e^{iφ_j} (M complex numbers, whatever N is);
``encode_z_space`` maps the tangent vector v = (Re W₀, Im W₀, Re W₁, Im W₁, …) ∈ ℝ^P by
``expmap0`` into the ball of the encoder's curvature (radius 1/√c; outputs are projected to
norm ≤ (1 − ε)/√c, so they lie strictly inside). Since x₀ > 0, A_j² ≥ x₀²/(N P²) > 0. W₀ is
real (X(0) = Σ x_n > 0), so coordinate 1 of every point is 0: the mean level sits on axis 0.

Computation (O(N log N), never an O(N²) DFT): r(τ) for τ < P is read off one real FFT of
the zero-padded, mean-centred signal (Wiener–Khinchin; the mean's part is added back in
closed form, which keeps float32 accurate for 10⁶ characters), and X(f_j) is the P-point FFT
of the signal folded modulo P (time aliasing: X(j/P) = Σ_r (Σ_{n≡r mod P} x_n) e^{−2πijr/P}).

**Padding invariance is exact**: both quantities are sums over n < N with all dependence on
N explicit (``lengths``); zeros beyond N add nothing, and the FFT size only needs to exceed
L + P to avoid circular wrap-around of the lags used. So a row padded to any length L ≥ N
gives the same result as the unpadded text up to floating-point rounding. The text API pads
to power-of-two buckets (≥ 16) to bound recompilation.

References: the seed's ``LanguageWaveEncoder`` (SpiralTorch ``st-tensor/src/pure.rs``, an
O(N²) DFT of width 2N); M. S. Bartlett (1948), R. B. Blackman & J. W. Tukey (1958) for the
lag-window spectral estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import poincare
from spiraljax.geometry.guards import check_curvature, is_concrete, safe_sqrt

__all__ = [
    "MIN_BUCKET",
    "LanguageWaveEncoder",
    "TextInputError",
    "bucket_length",
    "pad_codes",
    "text_to_codes",
    "wave_from_codes",
    "z_space_from_codes",
]

#: Smallest padded length used by the text API.
MIN_BUCKET = 16
_CODE_MOD = 1024


class TextInputError(ValueError, TypeError):
    """A text argument that is not a non-empty ``str`` (a ``ValueError`` and a ``TypeError``)."""


# --------------------------------------------------------------------------------------
# Text → padded code points
# --------------------------------------------------------------------------------------


def text_to_codes(text: str, name: str = "text") -> np.ndarray:
    """Unicode code points of ``text`` as int32 (lone surrogates kept as their values)."""
    if not isinstance(text, str):
        raise TextInputError(f"{name} must be a str, got {type(text).__name__}")
    if len(text) == 0:
        raise TextInputError(f"{name} is empty: the encoder needs at least one character")
    raw = text.encode("utf-32-le", "surrogatepass")
    return np.frombuffer(raw, dtype=np.uint32).astype(np.int32)


def bucket_length(n: int) -> int:
    """Padded length for a text of ``n`` code points: the next power of two ≥ max(n, 16)."""
    return 1 << max(int(n) - 1, MIN_BUCKET - 1).bit_length()


def _fill(codes: Sequence[np.ndarray], length: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    # Rows beyond len(codes) are filler texts of length 1 (code point 0), never returned.
    out = np.zeros((rows, length), np.int32)
    lens = np.ones(rows, np.int32)
    for i, c in enumerate(codes):
        out[i, : c.size] = c
        lens[i] = c.size
    return out, lens


def pad_codes(texts: Sequence[str], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Code points of ``texts`` zero-padded to ``(B, L)`` plus lengths ``(B,)`` (int32).

    ``L`` is ``length`` or the bucket of the longest text (``bucket_length``).
    """
    codes = [text_to_codes(t, f"texts[{i}]") for i, t in enumerate(texts)]
    longest = max((c.size for c in codes), default=1)
    if length is None:
        length = bucket_length(longest)
    elif length < longest:
        raise ValueError(f"length={length} is shorter than the longest text ({longest})")
    return _fill(codes, length, len(codes))


# --------------------------------------------------------------------------------------
# The jit/vmap-able core on padded code points
# --------------------------------------------------------------------------------------


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise ValueError(f"dim={dim!r} must be an int")
    if dim < 2 or dim % 2:
        raise ValueError(f"dim={dim} must be an even integer >= 2")
    return int(dim)


def _check_temperature(temperature: Any) -> None:
    if np.shape(temperature) != ():
        raise ValueError(f"temperature must be a scalar, got shape {np.shape(temperature)}")
    if is_concrete(temperature):
        t = float(np.asarray(temperature))
        if not (np.isfinite(t) and t > 0):
            raise ValueError(f"temperature={t} must be finite and > 0")


def _check_dtype(dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype={dtype} must be float32 or float64")
    return dtype


def _lag_matrix(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """C[τ, j] with A_j² = Σ_τ C[τ, j] r(τ) / (N P), and Σ_τ τ·C[τ, j] (float64)."""
    p, m = dim, dim // 2
    tau = np.arange(p)[:, None]
    j = np.arange(m)[None, :]
    mat = 2 * (1 - tau / p) * np.cos(2 * np.pi * ((j * tau) % p) / p)
    mat[0, :] = 1.0
    return mat, (tau * mat).sum(axis=0)


def _validate_core(codes: Any, lengths: Any, dim: int) -> tuple[jax.Array, jax.Array]:
    host = np.asarray(lengths) if is_concrete(lengths) else None  # read before any transfer
    codes = jnp.asarray(codes)
    lengths = jnp.asarray(lengths)
    if not jnp.issubdtype(codes.dtype, jnp.integer):
        raise ValueError(f"codes must hold integer code points, got dtype {codes.dtype}")
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    if codes.ndim < 1 or lengths.shape != codes.shape[:-1]:
        raise ValueError(
            f"codes of shape {codes.shape} need lengths of shape {codes.shape[:-1]}, "
            f"got {lengths.shape}"
        )
    if host is not None and host.size:
        lo, hi = int(host.min()), int(host.max())
        if lo < 1:
            raise ValueError(f"lengths must be >= 1, got {lo}")
        if hi > codes.shape[-1]:
            raise ValueError(f"lengths up to {hi} exceed the padded length {codes.shape[-1]}")
    return codes.astype(jnp.int32), lengths.astype(jnp.int32)


def _wave_row(codes: jax.Array, n: jax.Array, temperature: jax.Array, dim: int) -> jax.Array:
    """W (dim/2,) complex for one row of padded code points with true length n."""
    dtype = temperature.dtype
    p = dim
    length = codes.shape[-1]
    pos = jnp.arange(length)
    valid = pos < n
    nf = jnp.maximum(n, 1).astype(dtype)
    codes_f = jnp.remainder(codes, _CODE_MOD).astype(dtype) / _CODE_MOD
    x = jnp.where(valid, temperature * (codes_f + jnp.abs(jnp.sin((pos + 1) / nf))), 0)

    # Mean-centred signal y (zero beyond n): its autocorrelation carries the small,
    # informative part; the mean's O(N μ²) part is added back in closed form below.
    mu = jnp.sum(x) / nf
    y = jnp.where(valid, x - mu, 0)

    # Autocorrelation of y at lags 0..P−1 via one real FFT (size ≥ L + P: no wrap-around).
    nfft = 1 << (length + p - 1).bit_length()
    spec = jnp.fft.rfft(y, n=nfft)
    r_y = jnp.fft.irfft(spec.real**2 + spec.imag**2, n=nfft)[:p]

    # r_x(τ) = r_y(τ) + μ(Σ_{n<N−τ} y_n + Σ_{n≥τ} y_n) + μ²(N − τ), and since Σ y = 0:
    # Σ_{n<N−τ} y_n = −(sum of the last τ values), Σ_{n≥τ} y_n = −(sum of the first τ values).
    ypad = jnp.concatenate([y, jnp.zeros(p, dtype)])
    head = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(ypad[: p - 1])])
    tail_idx = n - 1 - jnp.arange(p - 1)
    tail_vals = jnp.where(tail_idx >= 0, ypad[jnp.clip(tail_idx, 0, length - 1)], 0)
    tail = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(tail_vals)])
    lag_mat, lag_moment = _lag_matrix(dim)
    lag_mat = jnp.asarray(lag_mat, dtype)
    # Lags τ ≥ N have r_x(τ) = 0; the μ² part's lag sum is exact: Σ_τ C[τ,j](N − τ) with
    # Σ_τ C[τ,j] = P·[j = 0] (the Fejér kernel vanishes at j/P, j ≠ 0).
    tau = jnp.arange(p)
    lag_ok = tau < n
    cross = jnp.where(lag_ok, -mu * (head + tail), 0)
    power = (r_y + cross) @ lag_mat
    mu_part = jnp.where(
        n >= p,
        nf * p * (jnp.arange(dim // 2) == 0) - jnp.asarray(lag_moment, dtype),
        jnp.where(lag_ok, nf - tau, 0) @ lag_mat,
    )
    power = (power + mu * mu * mu_part) / (nf * p)
    amp = safe_sqrt(power)

    # Phase of X(j/P): FFT of the signal folded modulo P (mean part folded exactly).
    padded = -(-length // p) * p
    fold_y = jnp.pad(y, (0, padded - length)).reshape(-1, p).sum(axis=0)
    fold_m = jnp.pad(valid.astype(dtype), (0, padded - length)).reshape(-1, p).sum(axis=0)
    big_x = (jnp.fft.fft(fold_y) + mu * jnp.fft.fft(fold_m))[: dim // 2]
    mag2 = big_x.real**2 + big_x.imag**2
    nz = mag2 > 0
    inv = jnp.where(nz, jax.lax.rsqrt(jnp.where(nz, mag2, 1)), 0)
    cos_phi = jnp.where(nz, big_x.real * inv, 1)
    sin_phi = jnp.where(nz, big_x.imag * inv, 0)
    return jax.lax.complex(amp * cos_phi, amp * sin_phi)


@partial(jax.jit, static_argnames=("dim",))
def _wave_jit(codes: jax.Array, lengths: jax.Array, temperature: jax.Array, dim: int):
    flat_codes = codes.reshape(-1, codes.shape[-1])
    flat_len = lengths.reshape(-1)
    waves = jax.vmap(lambda c, n: _wave_row(c, n, temperature, dim))(flat_codes, flat_len)
    return waves.reshape(*codes.shape[:-1], dim // 2)


def _tangent(wave: jax.Array) -> jax.Array:
    return jnp.stack([wave.real, wave.imag], axis=-1).reshape(*wave.shape[:-1], -1)


@partial(jax.jit, static_argnames=("dim",))
def _z_jit(codes, lengths, temperature, curvature, dim: int):
    tangent = _tangent(_wave_jit(codes, lengths, temperature, dim))
    return poincare.expmap0(tangent, curvature=curvature)


def wave_from_codes(
    codes: Any,
    lengths: Any,
    *,
    temperature: Any = 0.5,
    dim: int = 64,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """The fixed-width spectrum W (module docstring) of padded code points.

    Args:
      codes: integer code points, shape ``(..., L)``, zero-padded (any padding value works:
        positions ≥ the length are ignored).
      lengths: true lengths, shape ``(...)``, 1 ≤ length ≤ L.
      temperature: T > 0 (traced allowed, differentiable).
      dim: even P ≥ 2; the output has P/2 complex entries.
      dtype: float32 or float64 (complex64 / complex128 output).

    Returns:
      Complex array ``(..., dim/2)``; independent of L (exact padding invariance).
    """
    dim = _check_dim(dim)
    dtype = _check_dtype(dtype)
    _check_temperature(temperature)
    codes, lengths = _validate_core(codes, lengths, dim)
    return _wave_jit(codes, lengths, jnp.asarray(temperature, dtype), dim)


def z_space_from_codes(
    codes: Any,
    lengths: Any,
    *,
    curvature: Any = -1.0,
    temperature: Any = 0.5,
    dim: int = 64,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """``expmap0`` of the tangent vector (Re W₀, Im W₀, …): points ``(..., dim)`` in the ball.

    Same arguments as ``wave_from_codes`` plus the curvature K ≤ 0 (traced allowed,
    differentiable). Outputs have norm ≤ (1 − ε)/√c.
    """
    dim = _check_dim(dim)
    dtype = _check_dtype(dtype)
    _check_temperature(temperature)
    check_curvature(curvature)
    codes, lengths = _validate_core(codes, lengths, dim)
    temperature = jnp.asarray(temperature, dtype)
    return _z_jit(codes, lengths, temperature, jnp.asarray(curvature, dtype), dim)


# --------------------------------------------------------------------------------------
# The user-facing encoder
# --------------------------------------------------------------------------------------


@jax.tree_util.register_pytree_node_class
class LanguageWaveEncoder:
    """Token-free text encoder: code points → signal → FFT → fixed width → ``expmap0``.

    ``LanguageWaveEncoder(curvature=-1.0, temperature=0.5, dim=64)``; see the module
    docstring for the exact signal, spectrum and pooling. A pytree whose leaves are
    ``curvature`` and ``temperature`` (so both are differentiable and may be traced);
    ``dim`` and ``dtype`` are static.

    Raises ``ValueError`` for K > 0 or non-finite K, T ≤ 0 or non-finite T, ``dim`` odd or
    < 2, and (from the methods) empty or non-``str`` text (``TextInputError``, also a
    ``TypeError``).
    """

    def __init__(
        self,
        curvature: Any = -1.0,
        temperature: Any = 0.5,
        dim: int = 64,
        *,
        dtype: Any = jnp.float32,
    ) -> None:
        check_curvature(curvature)
        _check_temperature(temperature)
        self.curvature = curvature
        self.temperature = temperature
        self.dim = _check_dim(dim)
        self.dtype = _check_dtype(dtype)

    # pytree protocol -------------------------------------------------------------------
    def tree_flatten(self):
        return (self.curvature, self.temperature), (self.dim, self.dtype)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.curvature, obj.temperature = children
        obj.dim, obj.dtype = aux
        return obj

    def __repr__(self) -> str:
        return (
            f"LanguageWaveEncoder(curvature={self.curvature!r}, "
            f"temperature={self.temperature!r}, dim={self.dim}, dtype={self.dtype.name})"
        )

    @property
    def wave_width(self) -> int:
        """Length of ``encode_wave`` (``dim // 2``)."""
        return self.dim // 2

    # core ------------------------------------------------------------------------------
    def _temp(self) -> jax.Array:
        return jnp.asarray(self.temperature, self.dtype)

    def _curv(self) -> jax.Array:
        return jnp.asarray(self.curvature, self.dtype)

    def encode_codes(self, codes: Any, lengths: Any) -> jax.Array:
        """jit/vmap-able core: padded code points ``(..., L)`` + lengths → ``(..., dim)``."""
        codes, lengths = _validate_core(codes, lengths, self.dim)
        return _z_jit(codes, lengths, self._temp(), self._curv(), self.dim)

    def wave_codes(self, codes: Any, lengths: Any) -> jax.Array:
        """jit/vmap-able core: padded code points ``(..., L)`` + lengths → ``(..., dim/2)``."""
        codes, lengths = _validate_core(codes, lengths, self.dim)
        return _wave_jit(codes, lengths, self._temp(), self.dim)

    # text API --------------------------------------------------------------------------
    def _single(self, text: str) -> tuple[jax.Array, jax.Array]:
        codes = text_to_codes(text)
        padded, lens = _fill([codes], bucket_length(codes.size), 1)
        return jnp.asarray(padded), jnp.asarray(lens)

    def encode_wave(self, text: str) -> jax.Array:
        """W for one text: complex array ``(dim/2,)`` (complex64 or complex128)."""
        return self.wave_codes(*self._single(text))[0]

    def encode_z_space(self, text: str) -> jax.Array:
        """The text's point in the ball: ``(dim,)``."""
        return self.encode_codes(*self._single(text))[0]

    def _batched(self, texts: Iterable[str], fn) -> jax.Array:
        if isinstance(texts, str | bytes) or not isinstance(texts, Iterable):
            raise TextInputError(f"texts must be a sequence of str, got {type(texts).__name__}")
        texts = list(texts)
        codes = [text_to_codes(t, f"texts[{i}]") for i, t in enumerate(texts)]
        groups: dict[int, list[int]] = {}
        for i, c in enumerate(codes):
            groups.setdefault(bucket_length(c.size), []).append(i)
        parts, order = [], []
        for length, idx in sorted(groups.items()):
            # Group by bucket (memory stays O(Σ N), not B·max N) and pad the group size to a
            # power of two (bounded recompiles); filler rows are length-1 texts, discarded.
            rows = 1 << (len(idx) - 1).bit_length()
            block, lens = _fill([codes[i] for i in idx], length, rows)
            out = fn(jnp.asarray(block), jnp.asarray(lens))
            parts.append(out if rows == len(idx) else out[: len(idx)])
            order.extend(idx)
        if not parts:
            width = self.dim if fn == self.encode_codes else self.wave_width
            dtype = self.dtype if fn == self.encode_codes else jnp.result_type(self.dtype, 1j)
            return jnp.zeros((0, width), dtype)
        out = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
        if order == sorted(order):
            return out
        return out[np.argsort(np.asarray(order))]

    def encode_batch(self, texts: Iterable[str]) -> jax.Array:
        """``(B, dim)``, row i equal to ``encode_z_space(texts[i])``."""
        return self._batched(texts, self.encode_codes)

    def encode_wave_batch(self, texts: Iterable[str]) -> jax.Array:
        """``(B, dim/2)`` complex, row i equal to ``encode_wave(texts[i])``."""
        return self._batched(texts, self.wave_codes)
