"""The Pallas radix-select kernels, run with interpret=True on CPU: bit-identical to the
numpy reference (and so to the XLA path) for every kernel variant a Choice selects."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rankk_reference import pallas_grids, random_input, ref_indices

from spiraljax.kernels import Choice, bottomk, midk, topk
from spiraljax.kernels.pallas.radix import order_survivors

OPS = {"top": topk, "bottom": bottomk, "mid": midk}

# (kind, dtype, shape, k, choice): each is one interpreted compile; together they cover the
# fused, resident and multi-block shapes, both orderings, digit widths, 16/32-bit keys.
CASES = [
    ("top", jnp.float32, (2, 300), 7, Choice(digit_bits=4, tile=256, compact_tile=256)),
    ("mid", jnp.bfloat16, (3, 300), 10, Choice(digit_bits=4, tile=512, compact_tile=256)),
    (
        "bottom",
        jnp.float32,
        (2, 600),
        9,
        Choice(multiblock=True, chunks=2, digit_bits=4, tile=256, compact_tile=256),
    ),
    (
        "mid",
        jnp.int32,
        (2, 520),
        5,
        Choice(multiblock=True, chunks=4, digit_bits=4, tile=256, compact_tile=256, ordering=1),
    ),
    ("top", jnp.uint32, (2, 200), 12, Choice(digit_bits=4, tile=256, compact_tile=256, ordering=1)),
    ("bottom", jnp.float16, (2, 260), 30, Choice(digit_bits=3, tile=256, compact_tile=512)),
    (
        "top",
        jnp.float32,
        (3, 1500),
        20,
        Choice(digit_bits=4, tile=256, compact_tile=256, filter_capacity=1024),
    ),
    (
        "bottom",
        jnp.int32,
        (2, 900),
        11,
        Choice(digit_bits=4, tile=256, compact_tile=256, filter_capacity=1024, ordering=1),
    ),
]


@functools.cache
def _kernel(kind, k, choice):
    return jax.jit(lambda x: OPS[kind](x, k, implementation="pallas", choice=choice))


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c[0]}-{jnp.dtype(c[1]).name}-{c[4].multiblock}"
)
def test_kernel_bit_identical(case):
    kind, dtype, shape, k, choice = case
    f = _kernel(kind, k, choice)
    for seed in range(3):
        x = random_input(np.random.default_rng(seed), shape, dtype, ties=seed != 1)
        v, i = f(jnp.asarray(x))
        want = ref_indices(x, k, kind)
        np.testing.assert_array_equal(np.asarray(i), want)
        vx, ix = OPS[kind](jnp.asarray(x), k, implementation="xla")
        np.testing.assert_array_equal(np.asarray(i), np.asarray(ix))
        np.testing.assert_array_equal(
            np.ascontiguousarray(np.asarray(v)).view(np.uint8),
            np.ascontiguousarray(np.asarray(vx)).view(np.uint8),
        )


def test_kernel_under_vmap_folds_batch_into_rows():
    kind, dtype, _shape, k, choice = CASES[0]
    x = random_input(np.random.default_rng(7), (2, 1, 300), dtype, ties=True)
    f = jax.vmap(lambda r: topk(r, k, implementation="pallas", choice=choice))
    _, i = f(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(i)[:, 0], ref_indices(x[:, 0], k, kind))
    jaxpr = str(jax.make_jaxpr(f)(jnp.asarray(x)))
    assert "pallas_call" in jaxpr


def test_choice_selects_variant_and_launch():
    x = jnp.zeros((3, 5000), jnp.float32)
    fused = pallas_grids(lambda x: topk(x, 8, implementation="pallas", choice=Choice()), x)
    assert fused == [((3,), (3, 8 + 1024))]  # one launch, one program per row
    ch = Choice(multiblock=True, chunks=2, digit_bits=4, tile=1024)
    fn = lambda x: topk(x, 8, implementation="pallas", choice=ch)  # noqa: E731
    multi = pallas_grids(fn, x)
    # one radix-pass kernel (launched once per pass by a while loop: the pass's shift is an
    # operand), then a counting and a writing launch, each on a rows × chunks grid
    assert len(multi) == 3
    assert {g for g, _ in multi} == {(3, 2)}
    assert multi[0][1] == (3, 2, 16)  # 2^digit_bits candidate counts per chunk
    assert "while[" in str(jax.make_jaxpr(fn)(x))
    ch8 = Choice(multiblock=True, chunks=8, digit_bits=2, tile=256)
    x4 = jnp.zeros((3, 4096), jnp.float32)
    multi8 = pallas_grids(lambda x: topk(x, 8, implementation="pallas", choice=ch8), x4)
    assert len(multi8) == 3 and {g for g, _ in multi8} == {(3, 8)}
    assert multi8[0][1] == (3, 8, 4)
    mid = pallas_grids(lambda x: midk(x, 8, implementation="pallas", choice=ch), x)
    assert len(mid) == 2 + 2  # two searches (ranks s + k and s), then count and write


def test_order_survivors_sort_and_count_agree():
    rng = np.random.default_rng(3)
    x = jnp.asarray(np.round(rng.standard_normal((4, 50)) * 2).astype(np.float32))
    idx = jnp.asarray(np.sort(rng.permutation(50)[:12])[None].repeat(4, 0).astype(np.int32))
    for kind in ("top", "bottom", "mid"):
        a = order_survivors(x, idx, kind, 0)
        b = order_survivors(x, idx, kind, 1)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_filtered_kernel_when_the_kth_bucket_is_not_the_top_one(kind):
    """Regression: after the filtering pass the keys above the bucket (already written)
    must still count towards k in the later passes. Most entries at one extreme make
    the k-th key's bucket a low one when the filter triggers."""
    rng = np.random.default_rng(11)
    fill = np.int32(-(2**31)) if kind == "top" else np.int32(2**31 - 1)
    choice = Choice(digit_bits=2, tile=256, compact_tile=256, filter_capacity=1024)
    for k, frac in ((20, 0.8), (64, 0.8), (20, 0.5)):
        x = rng.standard_normal((2, 4096)).astype(np.float32).view(np.int32)
        x = np.where(rng.random(x.shape) < frac, fill, x).astype(np.int32)
        _, i = _kernel(kind, k, choice)(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(i), ref_indices(x, k, kind))
