"""Triton launches through XLA's typed FFI (``triton_kernel_call_ffi``), not the legacy call.

jax-triton 0.3.1 lowers every ``triton_call`` to the legacy custom call
``triton_kernel_call`` (``api_version=2``, the compressed kernel proto as its backend
config). jaxlib ≥ 0.10.1 also registers ``triton_kernel_call_ffi``: the same proto as the
``opaque`` attribute of a typed FFI call, whose kernel is looked up once when the
executable is initialised (the legacy handler looks its kernel up by the opaque bytes at
every launch) and which XLA may record into a CUDA graph (the handler is marked
command-buffer compatible; a legacy call never is).

``as_ffi(rule)`` wraps a lowering rule that emits the legacy call so that it emits the FFI
call instead; ``install()`` puts it in front of jax-triton's CUDA lowering for the calls
that ask for it (``custom_call_target_name=FFI_TARGET``), leaving every other
``triton_call`` of the process as jax-triton lowers it. ``available()`` says whether this
jaxlib has the target.

Off unless asked for (``SPIRALJAX_TRITON_FFI=1``, or ``select.TRITON_FFI = True``): on the
H200 (2026-12-04, jax 0.11.2, ``benchmarks/results/launch_overhead.md``) it gave the same
results bit for bit and the same times within noise — per-call overhead 0.05–0.35 ms
either way, about what ``lax.top_k`` pays too, and XLA's command buffers on or off made
no difference — so the legacy call, which needs no private jaxlib or jax-triton names,
stays the default.
"""

from __future__ import annotations

import functools
import os

FFI_TARGET = "triton_kernel_call_ffi"


def as_ffi(base_rule, target: str = FFI_TARGET):
    """A lowering rule emitting ``base_rule``'s legacy custom call as the FFI call ``target``.

    ``base_rule`` must emit one ``api_version=2`` custom call whose backend config is the
    opaque bytes; that call is replaced by an ``api_version=4`` call of ``target`` with
    the same operands, results and ``input_output_aliases``, and the bytes as its
    ``opaque`` attribute.
    """
    import jax
    from jax.interpreters.mlir import ir

    def rule(ctx, *args, **params):
        outs = base_rule(ctx, *args, **params)
        legacy = outs[0].owner
        legacy = getattr(legacy, "operation", legacy)
        version = ir.IntegerAttr(legacy.attributes["api_version"]).value
        if version != 2:
            raise ValueError(f"as_ffi: expected a legacy (api_version=2) call, got {version}")
        blob = ir.StringAttr(legacy.attributes["backend_config"]).value_bytes
        aliases = dict(params.get("input_output_aliases") or ())
        new = jax.ffi.ffi_lowering(target, api_version=4, operand_output_aliases=aliases)(
            ctx, *args, opaque=blob
        )
        legacy.erase()  # nothing uses its results: the new call's replace them
        return new

    return rule


def requested() -> bool:
    """Whether the user asked for the FFI launches (``SPIRALJAX_TRITON_FFI=1``)."""
    return os.environ.get("SPIRALJAX_TRITON_FFI", "0") == "1"


@functools.cache
def available() -> bool:
    """Whether this jaxlib registers the FFI Triton call for CUDA."""
    try:
        from jax._src.lib import gpu_triton

        return FFI_TARGET in gpu_triton._cuda_triton.registrations()
    except Exception:  # no CUDA plugin, or a jaxlib without the target
        return False


@functools.cache
def install() -> None:
    """Routes the ``triton_call``s naming ``FFI_TARGET`` through ``as_ffi`` (once)."""
    from jax.interpreters import mlir
    from jax_triton import triton_lib

    base = functools.partial(triton_lib.triton_kernel_call_lowering, triton_lib.get_cuda_backend)
    ffi_rule = as_ffi(base)

    def rule(ctx, *args, custom_call_target_name, **params):
        chosen = ffi_rule if custom_call_target_name == FFI_TARGET else base
        return chosen(ctx, *args, custom_call_target_name=custom_call_target_name, **params)

    mlir.register_lowering(triton_lib.triton_kernel_call_p, rule, platform="cuda")
