"""``ffi.as_ffi``: a legacy custom call re-emitted as a typed FFI call, lowered for CUDA on
the CPU (the lowering needs no GPU). The GPU run of the real kernels through it is timed
and checked bit for bit in ``benchmarks/launch_overhead.py``."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import pytest
from jax.interpreters import mlir

from spiraljax.kernels.triton import ffi

try:
    from jax.extend.core import Primitive
except ImportError:  # older jax
    from jax.core import Primitive

_names = itertools.count()
BLOB = b"\x00\xff\x80kernel proto\x01"


def _legacy_primitive(version: int = 2):
    """A primitive lowered (CUDA) to a legacy custom call carrying BLOB, via as_ffi."""
    p = Primitive(f"spiraljax_test_legacy_{next(_names)}")
    p.def_abstract_eval(lambda x, **_: jax.core.ShapedArray(x.shape, x.dtype))
    legacy = jax.ffi.ffi_lowering("legacy_target", api_version=version, backend_config=BLOB)

    def base_rule(ctx, x, **params):
        return legacy(ctx, x)

    mlir.register_lowering(p, ffi.as_ffi(base_rule, "new_ffi_target"), platform="cuda")
    return p


def _cuda_text(f, *args) -> str:
    return jax.jit(f).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


def test_legacy_call_becomes_ffi_call_with_the_same_bytes():
    p = _legacy_primitive()
    text = _cuda_text(lambda x: p.bind(x) * 2.0, jnp.ones((3, 4), jnp.float32))
    assert "legacy_target" not in text  # the legacy op was erased
    assert text.count("stablehlo.custom_call @new_ffi_target") == 1
    # the kernel proto travels unchanged, byte for byte, as the FFI "opaque" attribute
    escaped = "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\{b:02X}" for b in BLOB)
    assert f'opaque = "{escaped}"' in text
    assert "tensor<3x4xf32>" in text  # the result type (and so its users) kept


def test_other_calls_keep_their_lowering():
    p = _legacy_primitive()
    text = _cuda_text(lambda x: jnp.sort(p.bind(x)), jnp.ones((8,), jnp.float32))
    assert "new_ffi_target" in text and "legacy_target" not in text


def test_a_non_legacy_call_is_refused():
    p = _legacy_primitive(version=3)
    with pytest.raises(ValueError, match="api_version=2"):
        _cuda_text(lambda x: p.bind(x), jnp.ones((2,), jnp.float32))


def test_off_unless_requested_and_unavailable_on_cpu(monkeypatch):
    monkeypatch.delenv("SPIRALJAX_TRITON_FFI", raising=False)
    assert ffi.requested() is False
    monkeypatch.setenv("SPIRALJAX_TRITON_FFI", "1")
    assert ffi.requested() is True
    if jax.default_backend() == "cpu":
        ffi.available.cache_clear()
        assert ffi.available() is False  # no CUDA plugin here
