"""Distributed spiraljax on JAX meshes: layouts, sharded Rank-K, gossip.

See docs/concepts/distributed.md.
"""

from spiraljax.distributed import rank as _rank
from spiraljax.distributed.ameba import GossipResult, gossip
from spiraljax.distributed.layout import MemoryReport, MeshLayout, memory_report, place

topk = _rank.topk
bottomk = _rank.bottomk
midk = _rank.midk

__all__ = [
    "GossipResult",
    "MemoryReport",
    "MeshLayout",
    "bottomk",
    "gossip",
    "memory_report",
    "midk",
    "place",
    "topk",
]
