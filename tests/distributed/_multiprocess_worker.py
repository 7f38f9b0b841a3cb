"""One process of the 2-process test (run by test_multiprocess.py, not collected).

argv: process_id, num_processes, coordinator port. Each process owns 2 CPU devices;
together they run gossip over a 4-device ring and check the exact minimiser.
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")

process_id, num_processes, port = (int(a) for a in sys.argv[1:4])
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}",
    num_processes=num_processes,
    process_id=process_id,
    local_device_ids=None,
)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from spiraljax.distributed import gossip  # noqa: E402

assert jax.process_count() == num_processes, jax.process_count()
assert jax.device_count() == 2 * num_processes, jax.devices()

rng = np.random.default_rng(0)  # same data in every process
a = rng.normal(size=(32, 3))
b = a @ np.array([1.0, -2.0, 0.5]) + np.repeat(np.linspace(-3, 3, 4), 8)
w_star = np.linalg.lstsq(a, b, rcond=None)[0]

mesh = Mesh(np.asarray(jax.devices(), dtype=object), ("ring",))
sharding = NamedSharding(mesh, PartitionSpec("ring"))
local = [d for d in mesh.devices if d.process_index == jax.process_index()]


def global_array(host):
    per = host.shape[0] // len(mesh.devices)
    shards = [
        jax.device_put(host[i * per : (i + 1) * per], d)
        for i, d in enumerate(mesh.devices)
        if d in local
    ]
    return jax.make_array_from_single_device_arrays(host.shape, sharding, shards)


def loss(w, shard):
    x, y = shard
    return 0.5 * jnp.mean((x @ w - y) ** 2)


res = gossip(
    loss,
    jnp.zeros(3, jnp.float64),
    (global_array(a), global_array(b)),
    optax.sgd(0.1),
    mesh=mesh,
    tolerance=1e-9,
    max_rounds=5000,
)
assert bool(res.converged), (int(res.rounds), float(res.disagreement))
for shard in res.params.addressable_shards:
    np.testing.assert_allclose(np.asarray(shard.data)[0], w_star, atol=1e-7)
print(f"process {process_id}: ok after {int(res.rounds)} rounds")
jax.distributed.shutdown()
