"""DeviceCaps, Choice domains and the built-in plan_rank policy."""

import dataclasses

import pytest

from spiraljax.kernels import Choice, DeviceCaps, RankPlan, candidate_domain, candidates, plan_rank


def test_caps_constructors_and_errors():
    assert DeviceCaps.cuda().lane_width == 32 and DeviceCaps.cuda().subgroup
    assert DeviceCaps.rocm().lane_width == 64
    assert DeviceCaps.cpu().backend == "cpu" and not DeviceCaps.cpu().subgroup
    assert DeviceCaps.detect().backend == "cpu"  # tests run on CPU
    with pytest.raises(ValueError, match="backend='metal'"):
        DeviceCaps("metal")
    with pytest.raises(ValueError, match="sm_count=0"):
        DeviceCaps.cuda(0)
    with pytest.raises(ValueError, match="lane_width=64 exceeds max_workgroup=32"):
        DeviceCaps("rocm", 4, 64, 32)


@pytest.mark.parametrize("kind", ["top", "bottom", "mid", "topk"])
@pytest.mark.parametrize(
    "rows,cols,k", [(1024, 65536, 1024), (1, 67108864, 128), (8192, 4096, 8), (64, 1048576, 256)]
)
def test_plan_is_a_legal_choice(kind, rows, cols, k):
    caps = DeviceCaps.cuda()
    plan = plan_rank(kind, rows, cols, k, caps)
    assert isinstance(plan, RankPlan) and plan.source == "builtin"
    assert plan.choice.validate(caps, k) is plan.choice
    dom = candidate_domain(caps)
    for f in dataclasses.fields(Choice):
        assert getattr(plan.choice, f.name) in dom[f.name]


def test_policy_shapes():
    caps = DeviceCaps.cuda(132)
    batch1 = plan_rank("top", 1, 1 << 26, 128, caps).choice
    assert batch1.multiblock and batch1.chunks >= 256  # spread one row over the GPU
    many = plan_rank("top", 1024, 65536, 16, caps).choice
    assert not many.multiblock and many.ordering == 1
    short = plan_rank("top", 8192, 4096, 8, caps).choice
    assert short.tile >= 4096  # resident row
    assert plan_rank("top", 1024, 65536, 1024, caps).choice.ordering == 0


def test_plan_errors():
    with pytest.raises(ValueError, match="k=9 exceeds cols=8"):
        plan_rank("top", 2, 8, 9, DeviceCaps.cuda())
    with pytest.raises(ValueError, match="kind='max'"):
        plan_rank("max", 2, 8, 1)
    with pytest.raises(ValueError, match="rows=-1"):
        plan_rank("top", -1, 8, 1)
    with pytest.raises(ValueError, match="Choice.digit_bits=7"):
        Choice(digit_bits=7).validate()
    with pytest.raises(ValueError, match="Choice.ordering=1"):
        Choice(ordering=1).validate(None, 1000)


def test_candidates_enumerate_the_domain():
    caps = DeviceCaps.cuda()
    dom = candidate_domain(caps)
    fixed = candidates(
        caps,
        multiblock=False,
        tile=2048,
        compact_tile=1024,
        chunks=1,
        stages=2,
        filter_capacity=0,
        sample=0,
        family=0,
    )
    assert len(fixed) == len(dom["ordering"]) * len(dom["digit_bits"]) * len(dom["warps"])
    assert len(set(fixed)) == len(fixed)
    assert max(candidate_domain(DeviceCaps("cuda", 1, 32, 256))["warps"]) == 8
