"""LanguageWaveEncoder against an independent brute-force reference of its documented definition.

Reference (float64 numpy, no FFT identities): the seed's signal x_n, the amplitude as the RMS over
all N + P − 1 sliding windows of P characters of the window's normalised DFT, the phase of the
whole-text DTFT at j/P, and exp₀ written out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiraljax.zspace import (
    LanguageWaveEncoder,
    TextInputError,
    bucket_length,
    pad_codes,
    text_to_codes,
    wave_from_codes,
    z_space_from_codes,
)

TEXTS = [
    "a",
    "Z",
    "spiral",
    "Deep learning in hyperbolic space",
    "héllo wörld — 日本語のテキスト 🙂🚀 \x00\ud800 end",
    "The quick brown fox jumps over the lazy dog. " * 7,
]


def seed_signal(text: str, temperature: float) -> np.ndarray:
    n = len(text)
    return np.array(
        [
            temperature * ((ord(ch) % 1024) / 1024 + abs(np.sin((i + 1) / n)))
            for i, ch in enumerate(text)
        ]
    )


def reference_wave(text: str, temperature: float, dim: int) -> np.ndarray:
    x = seed_signal(text, temperature)
    n, p, m = len(x), dim, dim // 2
    xp = np.concatenate([np.zeros(p - 1), x, np.zeros(p - 1)])
    t = np.arange(p)
    power = np.zeros(m)
    for s in range(n + p - 1):
        win = xp[s : s + p]
        for j in range(m):
            power[j] += abs(np.sum(win * np.exp(-2j * np.pi * j * t / p)) / p) ** 2
    power /= n
    big = np.array([np.sum(x * np.exp(-2j * np.pi * j * np.arange(n) / p)) for j in range(m)])
    unit = np.where(np.abs(big) > 0, big / np.maximum(np.abs(big), 1e-300), 1.0)
    return np.sqrt(power) * unit


def reference_z(text: str, temperature: float, dim: int, curvature: float) -> np.ndarray:
    w = reference_wave(text, temperature, dim)
    v = np.stack([w.real, w.imag], -1).reshape(-1)
    c = -curvature
    nv = np.linalg.norm(v)
    if c == 0:
        return v
    return np.tanh(np.sqrt(c) * nv) * v / (np.sqrt(c) * nv)


TOL = {jnp.float32: 2e-6, jnp.float64: 1e-12}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("dim", [2, 8, 64])
def test_matches_reference_definition(dtype, dim):
    # Through the padded core (one compile per case); the text API is checked against the
    # core in the batch/padding tests below.
    enc = LanguageWaveEncoder(curvature=-0.9, temperature=0.7, dim=dim, dtype=dtype)
    codes, lengths = pad_codes(TEXTS, length=512)
    waves = np.asarray(enc.wave_codes(codes, lengths))
    points = np.asarray(enc.encode_codes(codes, lengths))
    assert waves.shape == (len(TEXTS), dim // 2)
    assert waves.dtype == (np.complex64 if dtype == jnp.float32 else np.complex128)
    assert points.shape == (len(TEXTS), dim) and points.dtype == dtype
    for i, text in enumerate(TEXTS):
        ref_w = reference_wave(text, 0.7, dim)
        scale = np.max(np.abs(ref_w))
        np.testing.assert_allclose(waves[i], ref_w, atol=TOL[dtype] * 10 * scale, rtol=0)
        np.testing.assert_allclose(
            points[i], reference_z(text, 0.7, dim, -0.9), atol=TOL[dtype] * 10
        )


def test_text_to_codes_is_code_points():
    for text in TEXTS:
        assert text_to_codes(text).tolist() == [ord(ch) for ch in text]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_fixed_width_for_all_lengths(dtype):
    enc = LanguageWaveEncoder(dim=16, dtype=dtype)
    rng = np.random.default_rng(1)
    for n in [1, 2, 16, 17, 1025]:
        text = "".join(chr(c) for c in rng.integers(32, 0x3000, size=n))
        w = enc.encode_wave(text)
        z = enc.encode_z_space(text)
        assert w.shape == (8,) and z.shape == (16,)
        assert bool(jnp.all(jnp.isfinite(z)))
        assert float(jnp.linalg.norm(z)) < 1


def test_million_characters():
    # 10⁶ characters: fixed width, finite, inside the ball, and float32 agrees with float64.
    rng = np.random.default_rng(2)
    codes = rng.integers(32, 127, size=10**6)
    text = "".join(map(chr, codes))
    z32 = LanguageWaveEncoder(dtype=jnp.float32).encode_z_space(text)
    z64 = LanguageWaveEncoder(dtype=jnp.float64).encode_z_space(text)
    assert z32.shape == (64,)
    assert float(jnp.linalg.norm(z64)) < 1
    np.testing.assert_allclose(np.asarray(z32), np.asarray(z64), atol=2e-4)


def test_deterministic():
    a = LanguageWaveEncoder(temperature=0.3).encode_batch(TEXTS)
    b = LanguageWaveEncoder(temperature=0.3).encode_batch(TEXTS)
    c = LanguageWaveEncoder(temperature=0.3).encode_batch(TEXTS)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_batch_equals_stacked_singles(dtype):
    enc = LanguageWaveEncoder(curvature=-2.0, temperature=0.6, dim=32, dtype=dtype)
    texts = [*TEXTS, "y", "a much longer sentence " * 40]
    batch = np.asarray(enc.encode_batch(texts))
    singles = np.stack([np.asarray(enc.encode_z_space(t)) for t in texts])
    assert batch.shape == (len(texts), 32)
    np.testing.assert_allclose(batch, singles, atol=TOL[dtype], rtol=0)
    waves = np.asarray(enc.encode_wave_batch(texts))
    np.testing.assert_allclose(
        waves, np.stack([np.asarray(enc.encode_wave(t)) for t in texts]), atol=TOL[dtype], rtol=0
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_padding_has_no_effect_in_core(dtype):
    # One padded (B, L) array, rows padded far beyond their length with garbage code points,
    # must equal the rows encoded alone at their own bucket.
    enc = LanguageWaveEncoder(dim=16, dtype=dtype)
    codes, lengths = pad_codes(TEXTS, length=1000)
    rng = np.random.default_rng(3)
    for i, n in enumerate(lengths):
        codes[i, n:] = rng.integers(0, 0x10FFFF, size=1000 - n)
    batch = np.asarray(enc.encode_codes(codes, lengths))
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(
            batch[i], np.asarray(enc.encode_z_space(text)), atol=TOL[dtype], rtol=0
        )


def test_empty_batch_and_order():
    enc = LanguageWaveEncoder(dim=4)
    assert enc.encode_batch([]).shape == (0, 4)
    assert enc.encode_wave_batch([]).shape == (0, 2)
    texts = ["long " * 100, "s", "medium text here", "s"]
    out = np.asarray(enc.encode_batch(texts))
    np.testing.assert_array_equal(out[1], out[3])
    np.testing.assert_allclose(out[0], np.asarray(enc.encode_z_space(texts[0])), atol=1e-6)


@pytest.mark.parametrize("curvature", [-1e-8, -1e-3, -1.0, -37.0, -1e4, -1e8])
@pytest.mark.parametrize("temperature", [1e-8, 1e-3, 0.5, 1e3, 1e8])
def test_strictly_inside_ball_at_extremes(curvature, temperature):
    for dtype in (jnp.float32, jnp.float64):
        enc = LanguageWaveEncoder(curvature=curvature, temperature=temperature, dim=8, dtype=dtype)
        z = np.asarray(enc.encode_batch(["a", "hyperbolic", "\U0010ffff" * 40]), np.float64)
        assert np.all(np.isfinite(z))
        radius = np.sqrt(-curvature) * np.linalg.norm(z, axis=-1)
        eps = 1e-5  # geometry.ball_eps of float32 and float64
        assert np.all(radius < 1)
        assert np.all(radius <= 1 - eps + 1e-6)


def test_euclidean_limit():
    # K = 0: exp₀ is the identity, so the point is the tangent vector (Re W₀, Im W₀, …).
    enc = LanguageWaveEncoder(curvature=0.0, dim=8, dtype=jnp.float64)
    w = np.asarray(enc.encode_wave("euclid"))
    z = np.asarray(enc.encode_z_space("euclid"))
    np.testing.assert_allclose(z, np.stack([w.real, w.imag], -1).reshape(-1), rtol=1e-14)
    near = LanguageWaveEncoder(curvature=-1e-12, dim=8, dtype=jnp.float64).encode_z_space("euclid")
    np.testing.assert_allclose(np.asarray(near), z, rtol=1e-10)


@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
@settings(max_examples=20)
def test_wave_is_linear_in_temperature(t1, t2):
    w1 = LanguageWaveEncoder(temperature=t1, dim=8, dtype=jnp.float64).encode_wave("linearity")
    w2 = LanguageWaveEncoder(temperature=t2, dim=8, dtype=jnp.float64).encode_wave("linearity")
    np.testing.assert_allclose(np.asarray(w2), np.asarray(w1) * (t2 / t1), rtol=1e-11)


@given(st.text(min_size=1, max_size=60))
@settings(max_examples=25)
def test_any_unicode_matches_reference(text):
    enc = LanguageWaveEncoder(temperature=0.5, dim=8, dtype=jnp.float64)
    np.testing.assert_allclose(
        np.asarray(enc.encode_wave(text)), reference_wave(text, 0.5, 8), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_jit_and_vmap_core(dtype):
    codes, lengths = pad_codes(TEXTS[:4], length=64)

    @jax.jit
    def f(c, n, t, k):
        return z_space_from_codes(c, n, temperature=t, curvature=k, dim=8, dtype=dtype)

    eager = np.asarray(
        z_space_from_codes(codes, lengths, temperature=0.5, curvature=-1.0, dim=8, dtype=dtype)
    )
    jitted = np.asarray(f(codes, lengths, jnp.asarray(0.5, dtype), jnp.asarray(-1.0, dtype)))
    np.testing.assert_allclose(jitted, eager, atol=TOL[dtype])
    # vmap over rows (the core's per-row function) and over temperatures.
    per_row = jax.vmap(lambda c, n: f(c[None], n[None], 0.5, -1.0)[0])(codes, lengths)
    np.testing.assert_allclose(np.asarray(per_row), eager, atol=TOL[dtype])
    temps = jnp.asarray([0.1, 0.5, 2.0], dtype)
    over_t = jax.vmap(lambda t: f(codes, lengths, t, -1.0))(temps)
    assert over_t.shape == (3, 4, 8)
    np.testing.assert_allclose(np.asarray(over_t[1]), eager, atol=TOL[dtype])
    # The encoder itself is a pytree: it passes through jit with traced leaves.
    enc = LanguageWaveEncoder(dim=8, dtype=dtype)
    through = jax.jit(lambda e: e.encode_codes(codes, lengths))(enc)
    np.testing.assert_allclose(np.asarray(through), eager, atol=TOL[dtype])
    waves = jax.jit(lambda c, n: wave_from_codes(c, n, dim=8, dtype=dtype))(codes, lengths)
    assert waves.shape == (4, 4)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    ("temperature", "curvature"), [(0.5, -1.0), (1e3, -1e3), (1e-4, -1e-6), (0.5, 0.0)]
)
def test_grad_temperature_curvature_finite(dtype, temperature, curvature):
    codes, lengths = pad_codes(["grad", "a longer text for gradients"], length=32)

    def loss(t, k):
        z = z_space_from_codes(codes, lengths, temperature=t, curvature=k, dim=8, dtype=dtype)
        return jnp.sum(z * jnp.arange(1, 9, dtype=dtype))

    gt, gk = jax.grad(loss, argnums=(0, 1))(
        jnp.asarray(temperature, dtype), jnp.asarray(curvature, dtype)
    )
    assert np.isfinite(float(gt)) and np.isfinite(float(gk))
    if dtype == jnp.float64 and curvature < 0:
        h = 1e-6 * temperature
        fd_t = (loss(temperature + h, curvature) - loss(temperature - h, curvature)) / (2 * h)
        hk = 1e-6 * abs(curvature)
        fd_k = (loss(temperature, curvature + hk) - loss(temperature, curvature - hk)) / (2 * hk)
        np.testing.assert_allclose(float(gt), float(fd_t), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(float(gk), float(fd_k), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"curvature": 0.5}, "curvature"),
        ({"curvature": float("nan")}, "curvature"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"dim": 7}, "dim"),
        ({"dim": 0}, "dim"),
        ({"dim": 1}, "dim"),
        ({"dim": -2}, "dim"),
        ({"dim": 8.0}, "dim"),
        ({"dim": True}, "dim"),
        ({"dtype": jnp.int32}, "dtype"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LanguageWaveEncoder(**kwargs)


@pytest.mark.parametrize("bad", ["", b"bytes", None, 42, ["list"], 3.5])
def test_bad_text(bad):
    enc = LanguageWaveEncoder(dim=4)
    for method in (enc.encode_wave, enc.encode_z_space):
        with pytest.raises(ValueError, match="text"):
            method(bad)
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        enc.encode_batch(["ok", bad])


def test_bad_text_is_also_type_error_and_batch_rejects_str():
    enc = LanguageWaveEncoder(dim=4)
    with pytest.raises(TypeError):
        enc.encode_z_space(b"bytes")
    with pytest.raises(TextInputError, match="sequence of str"):
        enc.encode_batch("a single string")


def test_bad_core_inputs():
    codes, lengths = pad_codes(["abc", "de"], length=8)
    with pytest.raises(ValueError, match="exceed the padded length"):
        z_space_from_codes(codes, np.array([3, 9], np.int32), dim=4)
    with pytest.raises(ValueError, match="lengths must be >= 1"):
        z_space_from_codes(codes, np.array([3, 0], np.int32), dim=4)
    with pytest.raises(ValueError, match="integer code points"):
        z_space_from_codes(codes.astype(np.float32), lengths, dim=4)
    with pytest.raises(ValueError, match="need lengths of shape"):
        z_space_from_codes(codes, lengths[:1], dim=4)
    with pytest.raises(ValueError, match="curvature"):
        z_space_from_codes(codes, lengths, curvature=1.0, dim=4)
    with pytest.raises(ValueError, match="length=2 is shorter"):
        pad_codes(["abc"], length=2)


def test_bucket_lengths_and_iterables():
    assert [bucket_length(n) for n in (1, 16, 17, 1000, 1024, 1025, 10**6)] == [
        16,
        16,
        32,
        1024,
        1024,
        2048,
        1 << 20,
    ]
    enc = LanguageWaveEncoder(dim=4, dtype=jnp.float64)
    from_gen = enc.encode_batch(t for t in ["ab", "cde"])
    from_tuple = enc.encode_batch(("ab", "cde"))
    np.testing.assert_array_equal(np.asarray(from_gen), np.asarray(from_tuple))
