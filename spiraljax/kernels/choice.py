"""What a Rank-K launch can be: device capabilities, the kernel ``Choice`` and its domain.

``DeviceCaps`` describes a device, ``Choice`` one variant of the Pallas Rank-K path and
its launch parameters, and ``candidate_domain(caps, kind, k=k)`` the legal values of every
field — the search space for SpiralK's SoftLogic, for the planner (``plan.py``) and for
the offline tuner (``tuner.py``). The rules that tie a field to the problem
(``problem_limits``: counting-rank ordering only for small k, no filter or sample for
Mid-K) are written here once; ``fit_to_problem`` and ``fits_problem`` apply them.

SpiralK spells one field differently (``chunks`` is ``ch``); ``spiralk_domain``,
``choice_to_fields`` and ``choice_from_fields`` translate. See docs/concepts/rank-k.md.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

KINDS = ("top", "bottom", "mid")


def normalize_kind(kind: str) -> str:
    name = {"topk": "top", "bottomk": "bottom", "midk": "mid"}.get(kind, kind)
    if name not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of top, bottom, mid")
    return name


@dataclasses.dataclass(frozen=True)
class DeviceCaps:
    """What the planner needs to know about a device.

    Attributes:
      backend: ``"cuda"``, ``"rocm"``, ``"cpu"`` or ``"tpu"``.
      sm_count: streaming multiprocessors / compute units (parallel programs in flight).
      lane_width: threads per warp / wavefront (32 CUDA, 64 ROCm, 1 CPU).
      max_workgroup: most threads per program (1024 on CUDA/ROCm).
      shared_mem: shared memory per program in bytes (0 when not applicable).
      l2_bytes: last-level cache size in bytes (rows re-read between passes stay there).
    """

    backend: str = "cpu"
    sm_count: int = 1
    lane_width: int = 1
    max_workgroup: int = 1024
    shared_mem: int = 0
    l2_bytes: int = 0

    def __post_init__(self):
        if self.backend not in ("cuda", "rocm", "cpu", "tpu"):
            raise ValueError(f"backend={self.backend!r} is not one of cuda, rocm, cpu, tpu")
        for name in ("sm_count", "lane_width", "max_workgroup"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be ≥ 1")
        if self.lane_width > self.max_workgroup:
            raise ValueError(
                f"lane_width={self.lane_width} exceeds max_workgroup={self.max_workgroup}"
            )

    @classmethod
    def cuda(cls, sm_count=132, *, max_workgroup=1024, shared_mem=227 * 1024, l2_bytes=50 << 20):
        """An NVIDIA GPU (defaults: H100/H200, 132 SMs)."""
        return cls("cuda", sm_count, 32, max_workgroup, shared_mem, l2_bytes)

    @classmethod
    def rocm(cls, sm_count=304, *, max_workgroup=1024, shared_mem=64 * 1024, l2_bytes=4 << 20):
        """An AMD GPU (defaults: MI300X, 304 CUs, 64-wide wavefronts)."""
        return cls("rocm", sm_count, 64, max_workgroup, shared_mem, l2_bytes)

    @classmethod
    def cpu(cls):
        return cls("cpu", 1, 1, 1024, 0, 0)

    @classmethod
    def detect(cls):
        """Caps of ``jax.devices()[0]`` (SM count read from the device where exposed)."""
        return _detect()

    @property
    def subgroup(self) -> bool:
        return self.lane_width > 1


@functools.cache
def _detect() -> DeviceCaps:
    import jax

    dev = jax.devices()[0]
    platform = dev.platform
    if platform in ("gpu", "cuda"):
        sms = getattr(dev, "core_count", None) or 132
        return DeviceCaps.cuda(int(sms))
    if platform == "rocm":
        sms = getattr(dev, "core_count", None) or 304
        return DeviceCaps.rocm(int(sms))
    if platform == "tpu":
        return DeviceCaps("tpu", 1, 1, 1024, 0, 0)
    return DeviceCaps.cpu()


@dataclasses.dataclass(frozen=True)
class Choice:
    """Kernel variant and launch parameters of the Pallas Rank-K path.

    Attributes:
      multiblock: the multi-block shape (SpiralK ``use_2ce``) — a grid of rows × ``chunks``
        programs, one launch per radix pass with per-chunk counts summed in XLA, then a
        count and a write launch for the compaction. ``False``: the fused shape, one
        program per row running all passes and the compaction in a single launch.
      ordering: how the k survivors (written in index order) are ordered (SpiralK ``mk``):
        0 = stable sort of their keys, 1 = counting rank (O(k²) compares, for small k).
      digit_bits: radix digit width D in bits, 1–4 (SpiralK ``mkd``); each pass tests 2^D
        candidate prefixes, so a 32-bit key needs ⌈32/D⌉ passes at most (fewer: the search
        exits once the count matches k).
      tile: elements per block in the counting passes (power of two); ``tile ≥ cols``
        selects the resident variant (row loaded once, kept in registers).
      compact_tile: elements per block in the compaction pass (power of two; SpiralK
        ``ctile``).
      chunks: column blocks per row in the multi-block shape (ignored when fused); an upper
        bound — each block is a whole number of tiles, so short rows get fewer.
      warps: Triton ``num_warps`` of every launch.
      stages: Triton ``num_stages`` (software pipelining depth of the loops).
      filter_capacity: filter capacity of the fused Top/Bottom-K kernel on streamed rows:
        once the bucket holding the k-th key has at most this many members it is copied to a
        per-row scratch and later passes read only that (AIR-style filtering); 0 = off.
      sample: Top/Bottom-K by sampled threshold (``pallas/sample.py``): this many keys
        of each row, in blocks spread along it, bound the k-th key from below; one pass
        over the row then keeps only the keys above that bound (``chunks`` programs per
        row, ``compact_tile`` per block) and the k best candidates are selected exactly.
        Falls back to the radix kernel above when the sample does not bound the selection
        (heavy ties, crowded survivors); 0 = off. Needs ``4·sample ≤ cols``.
      family: the kernel family. 0 = the Pallas kernels above; 1 = the filtered Triton
        kernels (``triton/select.py``: one read of the row, safe group-maxima bounds, a
        small candidate buffer, one sort; Mid-K by a verified sampled band), whose launch
        parameters come from ``plan_filter`` / ``plan_mid`` (the fields above are then
        unused); where those give no plan the Pallas kernels run.
    """

    multiblock: bool = False
    ordering: int = 0
    digit_bits: int = 2
    tile: int = 2048
    compact_tile: int = 1024
    chunks: int = 1
    warps: int = 8
    stages: int = 2
    filter_capacity: int = 0
    sample: int = 0
    family: int = 0

    def validate(self, caps: DeviceCaps | None = None, k: int | None = None) -> Choice:
        dom = candidate_domain(caps)
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v not in dom[f.name]:
                raise ValueError(f"Choice.{f.name}={v!r} is not one of {dom[f.name]}")
        if k is not None and not fits_problem(self, None, k):
            raise ValueError(f"Choice.ordering=1 (counting rank) needs k ≤ {MK1_MAX_K}, got k={k}")
        return self


#: longest row the built-in policy keeps resident in registers (tile ≥ cols).
RESIDENT_MAX = 8192

#: the built-in policy's sampled path (``Choice.sample``): Top/Bottom-K with k ≤ this …
SAMPLE_MAX_K = 256
#: … on rows of at least this many entries (GPU backends).
SAMPLE_MIN_COLS = 32768

#: counting-rank ordering builds a k×k comparison per row; above this a sort is cheaper.
MK1_MAX_K = 256


def candidate_domain(
    caps: DeviceCaps | None = None, kind: str | None = None, *, k: int | None = None
) -> dict[str, tuple]:
    """Legal values of every ``Choice`` field on ``caps`` (the planner's search space).

    With ``kind`` and/or ``k`` the domain is narrowed to what is legal (and meaningful)
    for that problem: counting-rank ordering (``ordering=1``) only for ``k ≤ MK1_MAX_K``, and
    no filter capacity for Mid-K (the filtered kernel is Top/Bottom-K only). The first
    value of each field is the preferred one when nothing else decides.
    """
    caps = caps or DeviceCaps.cuda()
    max_warps = max(1, caps.max_workgroup // max(caps.lane_width, 32))
    dom = {
        "multiblock": (False, True),
        "ordering": (0, 1),
        "digit_bits": (1, 2, 3, 4),
        "tile": (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
        "compact_tile": (256, 512, 1024, 2048, 4096),
        "chunks": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        "warps": tuple(w for w in (1, 2, 4, 8, 16, 32) if w <= max_warps),
        "stages": (1, 2, 3, 4),
        "filter_capacity": (0, 1024, 2048, 4096, 8192, 16384),
        "sample": (0, 1024, 2048, 4096, 8192),
        "family": (0, 1),
    }
    dom.update(problem_limits(kind, k))
    return dom


def problem_limits(kind: str | None, k: int | None) -> dict[str, tuple]:
    """The fields a problem restricts, with the values it allows (the first preferred).

    * Counting-rank ordering (``ordering=1``) builds a k×k comparison per row: only for
      ``k ≤ MK1_MAX_K``.
    * Mid-K has no filtered kernel and no sampled path: ``filter_capacity = 0`` and
      ``sample = 0``.

    ``kind`` or ``k`` ``None``: that part of the problem is unknown, nothing restricted.
    """
    limits: dict[str, tuple] = {}
    if k is not None and k > MK1_MAX_K:
        limits["ordering"] = (0,)
    if kind is not None and normalize_kind(kind) == "mid":
        limits["filter_capacity"] = (0,)
        limits["sample"] = (0,)
    return limits


def fits_problem(choice: Choice, kind: str | None, k: int | None) -> bool:
    """Whether ``choice`` obeys ``problem_limits(kind, k)``."""
    return all(getattr(choice, f) in vs for f, vs in problem_limits(kind, k).items())


def fit_to_problem(choice: Choice, kind: str | None, k: int | None) -> Choice:
    """``choice`` with every field the problem forbids set to its allowed value
    (``ordering=0`` above ``MK1_MAX_K``; no ``filter_capacity`` / ``sample`` for
    Mid-K)."""
    change = {f: vs[0] for f, vs in problem_limits(kind, k).items() if getattr(choice, f) not in vs}
    return dataclasses.replace(choice, **change) if change else choice


def candidates(caps: DeviceCaps | None = None, **fixed) -> list[Choice]:
    """Every ``Choice`` of the domain with the given fields held fixed (for search)."""
    dom = candidate_domain(caps)
    for name, value in fixed.items():
        dom[name] = (value,)
    names = list(dom)
    return [
        Choice(**dict(zip(names, vals, strict=False))) for vals in itertools.product(*dom.values())
    ]


#: ``Choice`` field → its short SpiralK name (the others are spelled alike). ``fcap`` is
#: no field of the SpiralK language: programs cannot assign it; the table, SoftLogic and
#: the fallback can.
DSL_FIELDS = {
    "multiblock": "use_2ce",
    "ordering": "mk",
    "digit_bits": "mkd",
    "compact_tile": "ctile",
    "chunks": "ch",
    "filter_capacity": "fcap",
}
_FROM_DSL = {v: f for f, v in DSL_FIELDS.items()}


def spiralk_domain(
    caps: DeviceCaps, kind: str, k: int, prefer: Choice | None = None
) -> dict[str, tuple]:
    """``candidate_domain(caps, kind, k=k)`` keyed by SpiralK field names (``DSL_FIELDS``:
    ``chunks`` → ``ch``, ``digit_bits`` → ``mkd``, …). With ``prefer`` each field lists
    ``prefer``'s value first, so SoftLogic's tie-break keeps the fields no rule speaks
    about at that plan (the built-in one)."""
    dom = candidate_domain(caps, kind, k=k)
    out = {}
    for f, vs in dom.items():
        if prefer is not None and getattr(prefer, f) in vs:
            v = getattr(prefer, f)
            vs = (v, *(w for w in vs if w != v))
        out[DSL_FIELDS.get(f, f)] = vs
    return out


def choice_to_fields(choice: Choice) -> dict:
    """A ``Choice`` as a SpiralK assignment (field names as in ``DSL_FIELDS``)."""
    return {
        DSL_FIELDS.get(f.name, f.name): getattr(choice, f.name) for f in dataclasses.fields(choice)
    }


def choice_from_fields(fields: dict) -> Choice:
    """Inverse of ``choice_to_fields`` (missing fields keep ``Choice`` defaults)."""
    kw = {}
    for name, v in fields.items():
        f = _FROM_DSL.get(name, name)
        kw[f] = bool(v) if f == "multiblock" else int(v)
    return Choice(**kw)
