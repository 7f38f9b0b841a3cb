"""Rank-K: exact TopK / BottomK / MidK selection with per-backend kernels.

See docs/concepts/rank-k.md (and docs/api/kernels.md for the modules in reading order).
"""

from spiraljax.kernels.choice import Choice, DeviceCaps, candidate_domain, candidates
from spiraljax.kernels.keys import signed_key
from spiraljax.kernels.plan import SOURCES, RankPlan, explain_plan, plan_rank
from spiraljax.kernels.rank import bottomk, midk, topk, topk2d

__all__ = [
    "SOURCES",
    "Choice",
    "DeviceCaps",
    "RankPlan",
    "bottomk",
    "candidate_domain",
    "candidates",
    "explain_plan",
    "midk",
    "plan_rank",
    "signed_key",
    "topk",
    "topk2d",
]
