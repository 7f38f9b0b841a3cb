"""What a Rank-K launch will be: the built-in policy and SpiralK's consensus over it.

``plan_rank(kind, rows, cols, k, caps)`` returns a ``RankPlan`` whose ``choice`` (see
``choice.py``: what a launch can be) is what the Pallas path actually runs.
``plan_rank`` is SpiralK's consensus over the legal domain — hard rules of
``SPIRAL_HEUR_K``, SoftLogic over its soft rules, the tuned table of the device
(``table.table_choice``) and the self-rewrite rules of the heur file — with
``default_choice`` (the built-in policy) as the fallback; ``RankPlan.source`` says which
one decided. Planning reads tables but never measures: it imports no tuning or timing
module. See docs/concepts/rank-k.md.
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

from spiraljax.kernels.choice import (
    MK1_MAX_K,
    RESIDENT_MAX,
    SAMPLE_MAX_K,
    SAMPLE_MIN_COLS,
    Choice,
    DeviceCaps,
    choice_from_fields,
    choice_to_fields,
    normalize_kind,
    spiralk_domain,
)
from spiraljax.kernels.table import table_choice
from spiraljax.spiralk import SOURCES as CONSENSUS_SOURCES
from spiraljax.spiralk import SpiralKWarning, decide
from spiraljax.spiralk.config import (
    default_heur_path,
    env_snapshot,
    has_program,
    table_path_from_env,
)

__all__ = [
    "MK1_MAX_K",
    "SOURCES",
    "RankPlan",
    "default_choice",
    "explain_plan",
    "plan_rank",
]

#: ``RankPlan.source`` values: SpiralK's consensus sources, and ``"builtin"`` when SpiralK
#: had no input at all.
SOURCES = (*CONSENSUS_SOURCES, "builtin")


class RankPlan(NamedTuple):
    """A planned Rank-K launch: the ``choice``, who made it (``source``), its ``score``."""

    kind: str
    rows: int
    cols: int
    k: int
    choice: Choice
    source: str
    score: float


def _filtered_preferred(kind: str, cols: int, k: int) -> bool:
    """Where the filtered Triton kernels beat the Pallas ones (H200, float32,
    ``benchmarks/rankk_filtered.py`` and ``benchmarks/rankk.py``, RESULTS.md): every
    Mid-K they plan (1.27 vs 1.87 ms on 1024×65536, k = 16) and every Top/Bottom-K they
    plan since the in-kernel overflow repair and chunks of 2048 (2026-12-03: 1024×65536,
    k = 16 / 128 / 1024: 0.16–0.21 / 0.23–0.24 / 0.50 ms against the Pallas plans'
    0.40 / 0.43 / 0.74; 4096×32768, k = 50: 0.38–0.45 vs 1.25 through the public API when
    it ran the Pallas plan; 8192×4096, k = 8: 0.14–0.15 vs 0.53)."""
    from spiraljax.kernels.triton.select import plan_filter, plan_mid

    if kind == "mid":
        return plan_mid(cols, k) is not None
    return plan_filter(cols, k) is not None


def default_choice(kind: str, rows: int, cols: int, k: int, caps: DeviceCaps) -> Choice:
    """The built-in policy: ``plan_rank``'s fallback, and the preferred value of every
    field SpiralK leaves open.

    * Multi-block (``multiblock``) when one program per row cannot fill the device:
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
      ≤ 4096 members (``filter_capacity``), so the row is read ~twice rather than once per pass.
    * Top/Bottom-K with k ≤ 256 on rows of ≥ 32768 entries (GPU): the sampled
      single-read path (``sample`` 2048, 8192 for rows ≥ 2^20; 4 warps); its filter runs
      ``chunks`` programs per row, and its fallback is the radix plan of the rules
      above. On the H200 the tuner measured 0.40 / 0.43 ms against 0.74 / 0.73 ms for
      the radix plan on 1024×65536, k = 16 / 128 (see RESULTS.md).
    * Survivors ordered by counting rank for k ≤ 32 (tiny k×k), else by sort.
    * On a GPU the filtered Triton kernels (``family = 1``, ``triton/select.py``) take
      the problems where they measured faster (``_filtered_preferred``).
    """
    pow2 = max(256, 1 << (max(cols, 1) - 1).bit_length())
    if pow2 <= RESIDENT_MAX:
        tile = pow2
    else:
        tile = 4096 if cols >= (1 << 20) else 2048
    compact_tile = min(1024, tile)
    multiblock = rows < 2 * caps.sm_count and cols >= 64 * tile
    chunks = 1
    if multiblock:
        want = max(1, (4 * caps.sm_count) // max(rows, 1))
        chunks = min(1024, 1 << (want - 1).bit_length(), max(1, cols // tile))
        chunks = 1 << (chunks.bit_length() - 1)
    # Streamed rows (not resident, not multi-block): filter the k-th key's bucket to a
    # scratch once it has ≤ 4096 members, so later passes stop re-reading the row.
    filter_capacity = 4096 if (not multiblock and tile < cols and kind != "mid") else 0
    # Long Top/Bottom-K rows with k ≤ 256: the sampled single-read path, with the radix
    # plan of the fields above as its fallback (its filter kernel runs `chunks` programs
    # per row: one per row, or the multi-block count for few rows).
    sample = 0
    if kind != "mid" and k <= SAMPLE_MAX_K and cols >= SAMPLE_MIN_COLS and caps.backend != "cpu":
        sample = 8192 if cols >= (1 << 20) else 2048
    return Choice(
        family=1 if caps.backend != "cpu" and _filtered_preferred(kind, cols, k) else 0,
        sample=sample,
        filter_capacity=filter_capacity,
        multiblock=multiblock,
        ordering=1 if k <= 32 else 0,
        digit_bits=3 if multiblock else 2,
        tile=tile,
        compact_tile=compact_tile,
        chunks=chunks,
        warps=4 if sample else 8,
        stages=2,
    )


def _stat(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)


def _plan_key(kind, rows, cols, k, caps):
    heur = default_heur_path()
    table = table_path_from_env()
    return (
        kind, rows, cols, k, caps, env_snapshot(), str(heur), _stat(heur),
        _stat(table) if table is not None else None,
    )  # fmt: skip


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
    builtin = default_choice(kind, rows, cols, k, caps).validate(caps, k)
    dom = spiralk_domain(caps, kind, k, prefer=builtin)
    entry = table_choice(kind, rows, cols, k, caps)
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
    if has_program():
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
    ``Choice`` values for ``caps`` and this problem (``spiralk_domain``):

    1. hard assignments of ``SPIRAL_HEUR_K`` (and of the heur file) win; fields they
       leave open are completed by the best of step 2, else by the built-in policy;
    2. otherwise the best-scored of SoftLogic over the ``soft(...)`` rules of
       ``SPIRAL_HEUR_K`` (unless ``SPIRAL_HEUR_SOFT=0``), the tuned table's entry for the
       device (``table.table_choice``; bonus ``SPIRAL_HEUR_GEN_WEIGHT``, default 0.10) and the
       adopted self-rewrite rules of the heur file (``SPIRAL_HEUR_FILE``, default
       ``~/.spiraljax/heur.kdsl``);
    3. otherwise the built-in policy of ``default_choice``.

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
    """The ``spiraljax.spiralk.Decision`` behind ``plan_rank`` (for ``heur explain``)."""
    return _plan(kind, rows, cols, k, caps)[1]
