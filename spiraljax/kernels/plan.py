"""Rank-K launch plans: device capabilities, kernel choices and the built-in policy.

``plan_rank(kind, rows, cols, k, caps)`` returns a ``RankPlan`` whose ``choice`` is what
the Pallas path actually runs: ``use_2ce`` picks the kernel shape (fused per-row kernel
or multi-block passes), ``mkd`` the radix digit width, ``tile`` / ``ctile`` the block
sizes of the counting and compaction loops, ``chunks`` the column blocks per row of the
multi-block shape, ``warps`` / ``stages`` the Triton launch parameters and ``mk`` how the
k survivors are ordered. ``candidate_domain(caps, ...)`` lists the legal values of every
field (the search space for SpiralK's SoftLogic and for ``spiraljax tune``).

``plan_rank`` is SpiralK's consensus over that domain — hard rules of ``SPIRAL_HEUR_K``,
SoftLogic over its soft rules, the tuned table of the device (``tuner.choose``) and the
self-rewrite rules of the heur file — with ``default_choice`` (the built-in policy) as
the fallback; ``RankPlan.source`` says which one decided.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import warnings
from typing import NamedTuple

KINDS = ("top", "bottom", "mid")


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
      use_2ce: two-stage ("two command") multi-block shape — a grid of rows × ``chunks``
        programs, one launch per radix pass with per-chunk counts summed in XLA, then a
        count and a write launch for the compaction. ``False``: the fused shape, one
        program per row running all passes and the compaction in a single launch.
      mk: merge kind, how the k survivors (written in index order) are ordered:
        0 = stable sort of their keys, 1 = counting rank (O(k²) compares, for small k).
      mkd: radix digit width D in bits (1–4); each pass tests 2^D candidate prefixes, so a
        32-bit key needs ⌈32/D⌉ passes at most (fewer: the search exits once the count
        matches k).
      tile: elements per block in the counting passes (power of two); ``tile ≥ cols``
        selects the resident variant (row loaded once, kept in registers).
      ctile: elements per block in the compaction pass (power of two).
      chunks: column blocks per row in the multi-block shape (ignored when fused); an upper
        bound — each block is a whole number of tiles, so short rows get fewer.
      warps: Triton ``num_warps`` of every launch.
      stages: Triton ``num_stages`` (software pipelining depth of the loops).
      fcap: filter capacity of the fused Top/Bottom-K kernel on streamed rows: once the
        bucket holding the k-th key has at most ``fcap`` members it is copied to a
        per-row scratch and later passes read only that (AIR-style filtering); 0 = off.
      sample: Top/Bottom-K by sampled threshold (``pallas/sample.py``): this many keys
        of each row, in blocks spread along it, bound the k-th key from below; one pass
        over the row then keeps only the keys above that bound (``chunks`` programs per
        row, ``ctile`` per block) and the k best candidates are selected exactly. Falls
        back to the radix kernel above when the sample does not bound the selection
        (heavy ties, crowded survivors); 0 = off. Needs ``4·sample ≤ cols``.
    """

    use_2ce: bool = False
    mk: int = 0
    mkd: int = 2
    tile: int = 2048
    ctile: int = 1024
    chunks: int = 1
    warps: int = 8
    stages: int = 2
    fcap: int = 0
    sample: int = 0

    def validate(self, caps: DeviceCaps | None = None, k: int | None = None) -> Choice:
        dom = candidate_domain(caps)
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v not in dom[f.name]:
                raise ValueError(f"Choice.{f.name}={v!r} is not one of {dom[f.name]}")
        if self.mk == 1 and k is not None and k > MK1_MAX_K:
            raise ValueError(f"Choice.mk=1 (counting rank) needs k ≤ {MK1_MAX_K}, got k={k}")
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
    for that problem: counting-rank ordering (``mk=1``) only for ``k ≤ MK1_MAX_K``, and
    no filter capacity for Mid-K (the filtered kernel is Top/Bottom-K only). The first
    value of each field is the preferred one when nothing else decides.
    """
    caps = caps or DeviceCaps.cuda()
    max_warps = max(1, caps.max_workgroup // max(caps.lane_width, 32))
    dom = {
        "use_2ce": (False, True),
        "mk": (0, 1),
        "mkd": (1, 2, 3, 4),
        "tile": (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
        "ctile": (256, 512, 1024, 2048, 4096),
        "chunks": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        "warps": tuple(w for w in (1, 2, 4, 8, 16, 32) if w <= max_warps),
        "stages": (1, 2, 3, 4),
        "fcap": (0, 1024, 2048, 4096, 8192, 16384),
        "sample": (0, 1024, 2048, 4096, 8192),
    }
    if k is not None and k > MK1_MAX_K:
        dom["mk"] = (0,)
    if kind is not None and normalize_kind(kind) == "mid":
        dom["fcap"] = (0,)
        dom["sample"] = (0,)
    return dom


def candidates(caps: DeviceCaps | None = None, **fixed) -> list[Choice]:
    """Every ``Choice`` of the domain with the given fields held fixed (for search)."""
    dom = candidate_domain(caps)
    for name, value in fixed.items():
        dom[name] = (value,)
    names = list(dom)
    return [
        Choice(**dict(zip(names, vals, strict=False))) for vals in itertools.product(*dom.values())
    ]


class RankPlan(NamedTuple):
    """A planned Rank-K launch: the ``choice``, who made it (``source``), its ``score``."""

    kind: str
    rows: int
    cols: int
    k: int
    choice: Choice
    source: str
    score: float


def default_choice(kind: str, rows: int, cols: int, k: int, caps: DeviceCaps) -> Choice:
    """The built-in policy: ``plan_rank``'s fallback, and the preferred value of every
    field SpiralK leaves open.

    * Multi-block (``use_2ce``) when one program per row cannot fill the device:
      ``rows < 2·SMs`` and the row is long (≥ 64 tiles); chunks give each SM ~4 programs.
    * Digit width 2: four candidates per pass balances compares per element (2^D per
      pass) against passes (⌈bits/D⌉), and early exit ends after ~log2(n)+2 bits. The
      multi-block shape, where every pass is a launch that re-reads the input, uses
      width 3 (11 passes instead of 16; 1.83 vs 2.05 ms on 64×1048576, k=256, H200).
    * Rows of at most 8192 entries use the resident variant (``tile ≥ cols``: the row is
      loaded once and stays in registers across passes); longer rows stream with
      counting tile 2048 (4096 for rows ≥ 2^20) and compaction tile 1024; 8 warps,
      2 stages.
    * Streamed Top/Bottom-K rows filter the k-th key's bucket into a scratch once it has
      ≤ 4096 members (``fcap``), so the row is read ~twice rather than once per pass.
    * Top/Bottom-K with k ≤ 256 on rows of ≥ 32768 entries (GPU): the sampled
      single-read path (``sample`` 2048, 8192 for rows ≥ 2^20; 4 warps); its filter runs
      ``chunks`` programs per row, and its fallback is the radix plan of the rules
      above. On the H200 the tuner measured 0.40 / 0.43 ms against 0.74 / 0.73 ms for
      the radix plan on 1024×65536, k = 16 / 128 (see RESULTS.md).
    * Survivors ordered by counting rank for k ≤ 32 (tiny k×k), else by sort.
    """
    pow2 = max(256, 1 << (max(cols, 1) - 1).bit_length())
    if pow2 <= RESIDENT_MAX:
        tile = pow2
    else:
        tile = 4096 if cols >= (1 << 20) else 2048
    ctile = min(1024, tile)
    use_2ce = rows < 2 * caps.sm_count and cols >= 64 * tile
    chunks = 1
    if use_2ce:
        want = max(1, (4 * caps.sm_count) // max(rows, 1))
        chunks = min(1024, 1 << (want - 1).bit_length(), max(1, cols // tile))
        chunks = 1 << (chunks.bit_length() - 1)
    # Streamed rows (not resident, not multi-block): filter the k-th key's bucket to a
    # scratch once it has ≤ 4096 members, so later passes stop re-reading the row.
    fcap = 4096 if (not use_2ce and tile < cols and kind != "mid") else 0
    # Long Top/Bottom-K rows with k ≤ 256: the sampled single-read path, with the radix
    # plan of the fields above as its fallback (its filter kernel runs `chunks` programs
    # per row: one per row, or the multi-block count for few rows).
    sample = 0
    if kind != "mid" and k <= SAMPLE_MAX_K and cols >= SAMPLE_MIN_COLS and caps.backend != "cpu":
        sample = 8192 if cols >= (1 << 20) else 2048
    return Choice(
        sample=sample,
        fcap=fcap,
        use_2ce=use_2ce,
        mk=1 if k <= 32 else 0,
        mkd=3 if use_2ce else 2,
        tile=tile,
        ctile=ctile,
        chunks=chunks,
        warps=4 if sample else 8,
        stages=2,
    )


#: ``Choice`` field → SpiralK field name (the others are spelled alike). ``fcap`` has no
#: SpiralK field: programs cannot assign it; the table, SoftLogic and the fallback can.
DSL_FIELDS = {"chunks": "ch"}
_FROM_DSL = {v: f for f, v in DSL_FIELDS.items()}

#: ``RankPlan.source`` values.
SOURCES = ("hard", "soft", "table", "rewrite", "fallback", "builtin")

#: Environment variable naming a tuned table (JSON, ``spiraljax tune``) to use instead of
#: the one shipped for the detected device class.
TABLE_ENV = "SPIRAL_HEUR_TABLE"

_ENV_KEYS = (
    "SPIRAL_HEUR_K",
    "SPIRAL_HEUR_SOFT",
    "SPIRAL_HEUR_GEN_WEIGHT",
    "SPIRAL_HEUR_FILE",
    "SPIRAL_HEUR_ON_ERROR",
    TABLE_ENV,
)


def spiralk_domain(
    caps: DeviceCaps, kind: str, k: int, prefer: Choice | None = None
) -> dict[str, tuple]:
    """``candidate_domain(caps, kind, k=k)`` keyed by SpiralK field names (``chunks`` →
    ``ch``). With ``prefer`` each field lists ``prefer``'s value first, so SoftLogic's
    tie-break keeps the fields no rule speaks about at that plan (the built-in one)."""
    dom = candidate_domain(caps, kind, k=k)
    out = {}
    for f, vs in dom.items():
        if prefer is not None and getattr(prefer, f) in vs:
            v = getattr(prefer, f)
            vs = (v, *(w for w in vs if w != v))
        out[DSL_FIELDS.get(f, f)] = vs
    return out


def choice_to_fields(choice: Choice) -> dict:
    """A ``Choice`` as a SpiralK assignment (``chunks`` → ``ch``)."""
    return {
        DSL_FIELDS.get(f.name, f.name): getattr(choice, f.name) for f in dataclasses.fields(choice)
    }


def choice_from_fields(fields: dict) -> Choice:
    """Inverse of :func:`choice_to_fields` (missing fields keep ``Choice`` defaults)."""
    kw = {}
    for name, v in fields.items():
        f = _FROM_DSL.get(name, name)
        kw[f] = bool(v) if f == "use_2ce" else int(v)
    return Choice(**kw)


def _stat(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)


def _plan_key(kind, rows, cols, k, caps):
    from spiraljax.spiralk import default_heur_path

    env = tuple(os.environ.get(v) for v in _ENV_KEYS)
    heur = default_heur_path()
    table = os.environ.get(TABLE_ENV, "").strip()
    return (kind, rows, cols, k, caps, env, str(heur), _stat(heur), _stat(table) if table else None)


_PLANS: dict[tuple, tuple[RankPlan, object]] = {}
_PLANS_MAX = 4096


def _checked(kind, rows, cols, k, caps):
    kind = normalize_kind(kind)
    for name, v in (("rows", rows), ("cols", cols), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name}={v!r} must be a non-negative integer")
    if k > cols:
        raise ValueError(f"k={k} exceeds cols={cols}")
    caps = caps or DeviceCaps.detect()
    if not isinstance(caps, DeviceCaps):
        raise ValueError(f"caps={caps!r} must be a DeviceCaps")
    return kind, caps


def _plan(kind, rows, cols, k, caps) -> tuple[RankPlan, object]:
    kind, caps = _checked(kind, rows, cols, k, caps)
    key = _plan_key(kind, rows, cols, k, caps)
    hit = _PLANS.get(key)
    if hit is not None:
        return hit
    from spiraljax.kernels import tuner
    from spiraljax.spiralk import SpiralKWarning, decide

    builtin = default_choice(kind, rows, cols, k, caps).validate(caps, k)
    dom = spiralk_domain(caps, kind, k, prefer=builtin)
    entry = tuner.table_choice(kind, rows, cols, k, caps)
    try:
        decision = decide(
            dom,
            rows=rows,
            cols=cols,
            k=k,
            sg=caps.subgroup,
            kind=f"{kind}k",
            table=None if entry is None else choice_to_fields(entry),
            fallback=choice_to_fields(builtin),
        )
    except ValueError as err:  # SpiralKError is a ValueError too; keep its type
        if type(err) is ValueError:
            raise ValueError(
                f"plan_rank({kind!r}, rows={rows}, cols={cols}, k={k}): {err}"
            ) from err
        raise
    for note in decision.notes:
        if note.startswith("hard ") and "not in the domain" in note:
            # e.g. the seed's ``wg``/``kl`` fields, which no spiraljax kernel has.
            warnings.warn(f"plan_rank: {note}", SpiralKWarning, stacklevel=4)
    choice = choice_from_fields(decision.assignment)
    try:
        choice.validate(caps, k)
    except ValueError as err:
        raise ValueError(
            f"plan_rank({kind!r}, rows={rows}, cols={cols}, k={k}): SpiralK chose an "
            f"illegal Choice ({decision.source}): {err}"
        ) from err
    source = decision.source
    if source == "fallback" and choice == builtin and not _had_input(decision):
        source = "builtin"
    plan = RankPlan(kind, rows, cols, k, choice, source, float(decision.score))
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    _PLANS[key] = (plan, decision)
    return plan, decision


def _had_input(decision) -> bool:
    """Whether any SpiralK input existed (a program, heur-file statements, notes)."""
    if decision.notes or decision.rules or decision.rewrite_rules or decision.hard:
        return True
    if os.environ.get("SPIRAL_HEUR_K", "").strip():
        return True
    path = decision.context.get("heur_file")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(line.strip() and not line.lstrip().startswith("#") for line in fh)
    except (OSError, TypeError):
        return False


def plan_rank(kind: str, rows: int, cols: int, k: int, caps: DeviceCaps | None = None) -> RankPlan:
    """Plan a Rank-K launch for ``rows`` rows of ``cols`` entries selecting ``k``.

    The plan is SpiralK's consensus (``spiraljax.spiralk.decide``) over the legal
    ``Choice`` values for ``caps`` and this problem (:func:`spiralk_domain`):

    1. hard assignments of ``SPIRAL_HEUR_K`` (and of the heur file) win; fields they
       leave open are completed by the best of step 2, else by the built-in policy;
    2. otherwise the best-scored of SoftLogic over the ``soft(...)`` rules of
       ``SPIRAL_HEUR_K`` (unless ``SPIRAL_HEUR_SOFT=0``), the tuned table's entry for the
       device (``tuner.choose``; bonus ``SPIRAL_HEUR_GEN_WEIGHT``, default 0.10) and the
       adopted self-rewrite rules of the heur file (``SPIRAL_HEUR_FILE``, default
       ``~/.spiraljax/heur.kdsl``);
    3. otherwise the built-in policy of :func:`default_choice`.

    Program variables: ``r = rows``, ``c = cols``, ``k``, ``sg = caps.subgroup``,
    ``kind = "topk" | "bottomk" | "midk"``; SpiralK's field ``ch`` is ``Choice.chunks``.

    ``RankPlan.source``:

    * ``"hard"`` — at least one field came from a hard assignment;
    * ``"soft"`` / ``"table"`` / ``"rewrite"`` — SoftLogic over the soft rules / the tuned
      table entry / the self-rewrite rules won the consensus;
    * ``"fallback"`` — SpiralK had input (a program or heur-file rules whose conditions
      did not hold or that match no legal value, soft rules switched off by
      ``SPIRAL_HEUR_SOFT=0``, fields no kernel has, a bad piece dropped under
      ``SPIRAL_HEUR_ON_ERROR=warn``) but none applied, so the built-in policy ran;
    * ``"builtin"`` — no SpiralK input at all (no program, empty heur file, no table
      entry): the built-in policy (``score`` 0).

    ``score`` is the winner's consensus score (Σ matched rule weights + table bonus).
    Plans are cached per (problem, caps, environment, heur file and table mtimes), so
    planning at trace time stays cheap.

    Raises:
      ValueError: bad arguments; an illegal hard value (``mk: 2`` where only 0/1 exist);
        a malformed environment variable.
      SpiralKError: ``SPIRAL_HEUR_K`` or the heur file does not parse or evaluate
        (with ``SPIRAL_HEUR_ON_ERROR=warn`` these warn loudly and are left out instead).
    """
    return _plan(kind, rows, cols, k, caps)[0]


def explain_plan(kind: str, rows: int, cols: int, k: int, caps: DeviceCaps | None = None):
    """The ``spiraljax.spiralk.Decision`` behind :func:`plan_rank` (for ``heur explain``)."""
    return _plan(kind, rows, cols, k, caps)[1]


def normalize_kind(kind: str) -> str:
    name = {"topk": "top", "bottomk": "bottom", "midk": "mid"}.get(kind, kind)
    if name not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of top, bottom, mid")
    return name
