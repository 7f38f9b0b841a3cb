"""Nickel & Kiela training: loss, negative sampling, a small jit-compiled run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.data import EdgeList, transitive_closure
from spiraljax.embedding import EmbedConfig, nickel_kiela_loss, reconstruction_metrics, train
from spiraljax.embedding import trainer as trainer_module
from spiraljax.geometry import poincare
from spiraljax.optim import riemannian_sgd, riemannian_sgd_step


def _tree(depth: int = 3, branching: int = 2) -> EdgeList:
    """Closure of a complete tree: node 'r' with `branching` children per level."""
    pairs, level = [], ["r"]
    for _ in range(depth):
        nxt = []
        for p in level:
            for b in range(branching):
                c = f"{p}{b}"
                pairs.append((c, p))
                nxt.append(c)
        level = nxt
    names = tuple(sorted({n for pair in pairs for n in pair}))
    ids = {n: i for i, n in enumerate(names)}
    g = EdgeList(names, np.array([(ids[c], ids[p]) for c, p in pairs], np.int32), "tree")
    return transitive_closure(g)


TREE = _tree()  # 15 nodes, 34 closure edges


def _dist_np(x, y):
    x2, y2 = (x * x).sum(-1), (y * y).sum(-1)
    return np.arccosh(1 + 2 * ((x - y) ** 2).sum(-1) / ((1 - x2) * (1 - y2)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_loss_matches_definition(dtype):
    rng = np.random.default_rng(0)
    table = rng.uniform(-0.6, 0.6, (6, 3)) / np.sqrt(3)
    pairs = np.array([[0, 1], [2, 3], [4, 5]], np.int32)
    negs = np.array([[2, 3, 4], [0, 1, 5], [0, 0, 1]], np.int32)
    neg_mask = np.array([[True, True, False], [True, True, True], [True, False, True]])
    pair_mask = np.array([True, True, False])
    want = []
    for i in range(2):  # third pair is padding
        u = table[pairs[i, 0]]
        cands = [pairs[i, 1]] + [n for n, ok in zip(negs[i], neg_mask[i], strict=True) if ok]
        logits = -np.array([_dist_np(u, table[c]) for c in cands])
        want.append(np.log(np.exp(logits).sum()) - logits[0])
    f = jax.jit(nickel_kiela_loss)
    got = f(jnp.asarray(table, dtype), pairs, negs, neg_mask, pair_mask)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.mean(want), rtol=1e-5 if dtype == jnp.float32 else 1e-12)
    grad = jax.grad(nickel_kiela_loss)(jnp.asarray(table, dtype), pairs, negs, neg_mask, pair_mask)
    assert np.all(np.isfinite(grad))
    # Only rows in non-padding pairs and their unmasked negatives get a gradient.
    touched = {0, 1, 2, 3, 5}
    for r in range(6):
        assert np.any(grad[r] != 0) == (r in touched)


def test_loss_under_vmap_matches_a_loop():
    rng = np.random.default_rng(1)
    tables = jnp.asarray(rng.uniform(-0.5, 0.5, (4, 6, 2)), jnp.float64)
    pairs = jnp.array([[0, 1], [2, 3]])
    negs = jnp.array([[4, 5], [0, 1]])
    nm, pm = jnp.ones((2, 2), bool), jnp.ones((2,), bool)
    batched = jax.vmap(nickel_kiela_loss, in_axes=(0, None, None, None, None))(
        tables, pairs, negs, nm, pm
    )
    looped = [nickel_kiela_loss(t, pairs, negs, nm, pm) for t in tables]
    np.testing.assert_allclose(batched, looped, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("radius", [0.0, 1e-12, 0.5, "boundary"])
def test_loss_and_gradient_finite_at_extremes(dtype, radius):
    # Coincident points, points at the origin and at the projection boundary.
    eps = 1e-5  # geometry.ball_eps of float32 and float64
    r = 1 - eps if radius == "boundary" else radius
    direction = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    table = jnp.asarray(direction * r, dtype)
    pairs = jnp.array([[0, 1], [2, 3]])
    negs = jnp.array([[2, 3], [0, 1]])
    nm, pm = jnp.ones((2, 2), bool), jnp.ones((2,), bool)
    loss, grad = jax.jit(jax.value_and_grad(nickel_kiela_loss))(table, pairs, negs, nm, pm)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss.dtype == dtype and grad.dtype == dtype


def test_loss_with_all_negatives_masked_is_zero():
    table = jnp.asarray([[0.1, 0.0], [0.0, 0.2]], jnp.float64)
    loss = nickel_kiela_loss(
        table, jnp.array([[0, 1]]), jnp.array([[1]]), jnp.array([[False]]), jnp.array([True])
    )
    assert float(loss) == 0.0


@pytest.mark.parametrize("burn_in", [False, True])
def test_negatives_exclude_self_and_true_neighbours(burn_in):
    tables = trainer_module._tables(TREE)
    u = jnp.asarray(np.repeat(np.arange(TREE.num_nodes, dtype=np.int32), 4))
    sample = jax.jit(trainer_module._sample_negatives, static_argnums=3)
    cand, ok = sample(jax.random.key(3), u, tables, 64, jnp.asarray(burn_in))
    cand, ok, u = np.asarray(cand), np.asarray(ok), np.asarray(u)
    assert cand.shape == (u.size, 64) and cand.min() >= 0 and cand.max() < TREE.num_nodes
    ancestors = {i: set() for i in range(TREE.num_nodes)}
    for c, p in TREE.edges.tolist():
        ancestors[c].add(p)
    for i in range(u.size):
        for n, valid in zip(cand[i], ok[i], strict=True):
            assert valid == (n != u[i] and n not in ancestors[u[i]])
    if burn_in:
        # Unigram^0.75 over parents: leaves (never a parent) are never drawn.
        parents = set(TREE.edges[:, 1].tolist())
        assert set(cand.ravel().tolist()) <= parents
    else:
        assert len(set(cand.ravel().tolist())) == TREE.num_nodes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_run_trains_inside_the_ball(dtype):
    config = EmbedConfig(
        dim=2, epochs=60, lr=0.5, negatives=8, burn_in=5, batch_size=4, seed=1, dtype=dtype
    )
    seen = []
    result = train(TREE, config, progress=False, callback=lambda e, loss: seen.append(e))
    assert seen == list(range(60))
    x = result.embedding
    assert x.shape == (15, 2) and x.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(result.losses))
    assert np.linalg.norm(x, axis=1).max() < 1.0
    assert result.losses[-10:].mean() < 0.5 * result.losses[:5].mean()
    assert np.all(result.relations_per_second > 0) and result.train_seconds > 0
    m = reconstruction_metrics(x, TREE)
    assert m.map > 0.9 and m.mean_rank < 1.5
    # The root ends nearer the origin than the leaves.
    norms = np.linalg.norm(x, axis=1)
    leaves = [i for i, n in enumerate(TREE.names) if len(n) == 4]
    assert norms[TREE.index("r")] < norms[leaves].min()


def test_training_is_deterministic_given_the_seed():
    config = EmbedConfig(dim=3, epochs=3, burn_in=1, batch_size=5, negatives=4, seed=7)
    a = train(TREE, config, progress=False)
    b = train(TREE, config, progress=False)
    c = train(TREE, EmbedConfig(dim=3, epochs=3, burn_in=1, batch_size=5, negatives=4, seed=8),
              progress=False)  # fmt: skip
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(a.embedding, b.embedding)
    else:  # GPU scatter-adds of duplicate rows sum in no fixed order
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)
    assert not np.allclose(a.embedding, c.embedding, atol=1e-3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("retraction", ["expmap", "first_order"])
def test_row_update_is_the_rsgd_step_and_keeps_zero_gradient_rows(dtype, retraction):
    rng = np.random.default_rng(4)
    n, d = 512, 10  # enough rows that RSGD with a zero gradient re-rounds some of them
    x = rng.normal(size=(n, d))
    x *= rng.uniform(0.1, 1.2, (n, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
    table = poincare.project(jnp.asarray(x, dtype))  # some rows on the boundary
    grad = jnp.asarray(rng.normal(size=(n, d)), dtype).at[::2].set(0)  # even rows: no gradient
    opt = riemannian_sgd(0.3, retraction=retraction)
    rows = jnp.asarray(rng.integers(0, n, 400), jnp.int32)  # duplicates, zero-gradient rows

    def update(rows):
        return trainer_module._update_rows(opt, table, grad, rows, opt.init(table), -1.0)

    sparse, state = update(rows)
    dense, _ = update(None)
    assert int(state.count) == 1
    want = riemannian_sgd_step(table, grad, 0.3, retraction=retraction)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == jnp.float32 else {"rtol": 1e-12}
    odd = np.arange(1, n, 2)
    np.testing.assert_allclose(dense[odd], want[odd], **tol)
    np.testing.assert_allclose(sparse[rows[rows % 2 == 1]], want[rows[rows % 2 == 1]], **tol)
    # Zero-gradient rows and rows outside the batch keep their exact bits (RSGD with a zero
    # gradient would re-round some of them, boundary rows in particular).
    np.testing.assert_array_equal(dense[::2], table[::2])
    untouched = np.setdiff1d(np.arange(n), np.asarray(rows[rows % 2 == 1]))
    np.testing.assert_array_equal(sparse[untouched], table[untouched])


def test_dense_and_gathered_row_updates_train_alike(monkeypatch):
    config = EmbedConfig(dim=3, epochs=4, burn_in=1, batch_size=2, negatives=3, seed=5)
    assert not trainer_module._dense_update(config, TREE.num_nodes)  # 2·5 < 15 rows
    assert trainer_module._dense_update(EmbedConfig(batch_size=3, negatives=3), 15)
    gathered = train(TREE, config, progress=False)
    monkeypatch.setattr(trainer_module, "_dense_update", lambda config, n: True)
    dense = train(TREE, config, progress=False)
    np.testing.assert_allclose(dense.embedding, gathered.embedding, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dense.losses, gathered.losses, rtol=1e-12)


def test_negatives_for_a_grid_of_children():
    tables = trainer_module._tables(TREE)
    u = jnp.asarray(np.arange(TREE.num_nodes, dtype=np.int32).reshape(3, 5))
    cand, ok = trainer_module._sample_negatives(jax.random.key(0), u, tables, 7, False)
    assert cand.shape == ok.shape == (3, 5, 7)
    ancestors = {i: set() for i in range(TREE.num_nodes)}
    for c, p in TREE.edges.tolist():
        ancestors[c].add(p)
    for (i, j, slot), n in np.ndenumerate(np.asarray(cand)):
        child = int(u[i, j])
        assert bool(ok[i, j, slot]) == (n != child and n not in ancestors[child])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, "dim=0"),
        ({"epochs": 0}, "epochs=0"),
        ({"negatives": -1}, "negatives=-1"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"burn_in": -1}, "burn_in=-1"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"lr": float("nan")}, "lr=nan"),
        ({"curvature": 1.0}, "curvature=1.0"),
        ({"curvature": 0.0}, "curvature=0.0"),
        ({"dtype": "float16"}, "dtype='float16'"),
        ({"retraction": "cayley"}, "retraction='cayley'"),
        ({"optimizer": "lbfgs"}, "optimizer='lbfgs'"),
        ({"lr_schedule": "step"}, "lr_schedule='step'"),
        ({"time_budget": 0}, "time_budget=0"),
        ({"time_budget": -1.0}, "time_budget=-1.0"),
        ({"max_step": 0.0}, "max_step=0.0"),
        ({"max_step": float("inf")}, "max_step=inf"),
        ({"max_step": "1"}, "max_step='1'"),
        ({"burn_in_lr_factor": 0.0}, "burn_in_lr_factor=0.0"),
        ({"burn_in_lr_factor": -0.01}, "burn_in_lr_factor=-0.01"),
        ({"burn_in_lr_factor": float("inf")}, "burn_in_lr_factor=inf"),
        ({"burn_in_lr_factor": "0.01"}, "burn_in_lr_factor='0.01'"),
        ({"burn_in_negatives": 0}, "burn_in_negatives=0"),
        ({"burn_in_negatives": 51}, r"burn_in_negatives=51 .*negatives=50"),
        ({"burn_in_negatives": 2.5}, "burn_in_negatives=2.5"),
        ({"burn_in_negatives": True}, "burn_in_negatives=True"),
        ({"burn_in_unigram_power": -1.0}, "burn_in_unigram_power=-1.0"),
        ({"burn_in_unigram_power": float("nan")}, "burn_in_unigram_power=nan"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbedConfig(**kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_riemannian_adam_trains_the_tree(dtype):
    config = EmbedConfig(
        dim=2, epochs=60, lr=0.2, negatives=8, burn_in=5, batch_size=8, seed=1, dtype=dtype,
        optimizer="radam",
    )  # fmt: skip
    result = train(TREE, config, progress=False)
    x = result.embedding
    assert x.dtype == np.dtype(dtype) and np.all(np.isfinite(x))
    assert np.linalg.norm(x, axis=1).max() < 1.0
    assert result.losses[-10:].mean() < 0.5 * result.losses[:5].mean()
    assert reconstruction_metrics(x, TREE).map > 0.9


def test_time_budget_stops_early_and_reports_the_epochs_run():
    config = EmbedConfig(dim=2, epochs=100_000, burn_in=1, batch_size=4, negatives=4,
                         time_budget=1e-9)  # fmt: skip
    seen = []
    result = train(TREE, config, progress=False, callback=lambda e, loss: seen.append(e))
    # Every epoch ends past a 1 ns budget: exactly one epoch runs.
    assert seen == [0] and result.losses.shape == (1,) and result.relations_per_second.shape == (1,)


def test_cosine_schedule_decays_to_the_floor():
    steps_burn_in, steps_total, lr = 3, 13, 2.0
    optimizer, _ = trainer_module._epoch_function(
        1, 1, -1.0, "expmap", lr, steps_burn_in, 1, None, True, "rsgd", "cosine", steps_total
    )
    # The schedule is visible through the RSGD step size on a point at the origin.
    x = jnp.zeros((1, 2), jnp.float32)
    g = jnp.array([[1e-3, 0.0]], jnp.float32)
    state = optimizer.init(x)
    sizes = []
    for _ in range(steps_total):
        u, state = optimizer.update(g, state, x)
        sizes.append(float(-u[0, 0]))
    sizes = np.array(sizes) / (1e-3 / 4)  # λ₀² = 4: the step is lr·g/4 (to first order)
    np.testing.assert_allclose(sizes[:3], 0.1 * lr, rtol=1e-3)  # burn-in at lr × 0.1
    np.testing.assert_allclose(sizes[3], lr, rtol=1e-3)
    assert np.all(np.diff(sizes[3:]) < 0)
    np.testing.assert_allclose(sizes[-1], lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 0.9))),
                               rtol=1e-3)  # fmt: skip


@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_row_step_cap_bounds_the_riemannian_gradient_and_keeps_small_rows(manifold, dtype):
    from spiraljax.geometry import lorentz

    model = lorentz if manifold == "lorentz" else poincare
    rng = np.random.default_rng(3)
    x = model.project(jnp.asarray(rng.uniform(-0.5, 0.5, (6, 4)), dtype))
    if manifold == "lorentz":
        x = model.project(jnp.concatenate([jnp.zeros_like(x[:, :1]), x], axis=1))
    g = jnp.asarray(rng.normal(size=x.shape), dtype)
    g = g * jnp.asarray([1e-3, 1e-3, 10.0, 100.0, 0.0, 1e3], dtype)[:, None]
    size = model.norm(x, model.egrad2rgrad(x, g))
    cap = 0.5
    capped = trainer_module._cap_row_steps(g, x, cap, -1.0, manifold)
    new_size = np.asarray(model.norm(x, model.egrad2rgrad(x, capped)))
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    small = np.asarray(size) <= cap
    assert small[:2].all() and not small[2:4].any()
    np.testing.assert_array_equal(np.asarray(capped)[small], np.asarray(g)[small])  # untouched
    np.testing.assert_allclose(new_size[~small], cap, rtol=tol)  # scaled onto the cap
    assert np.all(np.isfinite(np.asarray(capped)))
    # direction kept: capped rows are positive multiples of the original rows
    cos = np.sum(np.asarray(capped) * np.asarray(g), -1)[~small]
    assert np.all(cos > 0)


@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_max_step_bounds_how_far_a_row_moves_in_one_step(manifold):
    from spiraljax.geometry import lorentz

    model = lorentz if manifold == "lorentz" else poincare
    # batch ≥ edges and no burn-in: every epoch is one step at the main lr
    base = dict(dim=2, epochs=2, lr=50.0, negatives=8, burn_in=0, batch_size=64, seed=2,
                manifold=manifold)  # fmt: skip

    def tables(**kw):
        seen = []
        train(TREE, EmbedConfig(**base, **kw), progress=False,
              table_callback=lambda e, t: seen.append(np.array(t)))  # fmt: skip
        return seen

    free = tables()
    capped = tables(max_step=0.05)
    moved_free = np.asarray(model.dist(free[0], free[1]))
    moved = np.asarray(model.dist(capped[0], capped[1]))
    assert moved_free.max() > 0.5  # without the cap this lr throws rows far
    assert moved.max() <= 0.05 * (1 + 1e-6) and moved.max() > 0.04
    # a cap no step reaches changes nothing, bit for bit
    same = tables(max_step=1e6)
    np.testing.assert_array_equal(same[1], free[1])


def test_burn_in_lr_factor_sets_the_burn_in_step():
    steps_burn_in, lr = 3, 2.0
    optimizer, _ = trainer_module._epoch_function(
        1, 1, -1.0, "expmap", lr, steps_burn_in, 1, None, True, "rsgd", "constant", 6,
        burn_in_lr_factor=0.01,
    )  # fmt: skip
    x = jnp.zeros((1, 2), jnp.float32)
    g = jnp.array([[1e-3, 0.0]], jnp.float32)
    state = optimizer.init(x)
    sizes = []
    for _ in range(6):
        u, state = optimizer.update(g, state, x)
        sizes.append(float(-u[0, 0]) / (1e-3 / 4))  # the step is lr·g/λ₀², λ₀² = 4
    np.testing.assert_allclose(sizes[:3], 0.01 * lr, rtol=1e-3)
    np.testing.assert_allclose(sizes[3:], lr, rtol=1e-3)


def _tables_per_epoch(**kw):
    seen = []
    base = dict(dim=2, epochs=3, lr=0.5, negatives=6, batch_size=8, seed=4)
    result = train(TREE, EmbedConfig(**{**base, **kw}), progress=False,
                   table_callback=lambda e, t: seen.append(np.array(t)))  # fmt: skip
    return seen, result.losses


def test_burn_in_epochs_train_at_lr_times_the_factor():
    # Only lr × factor reaches the burn-in: (lr 1, factor 0.5) and (lr 2, factor 0.25)
    # give the same burn-in epoch bit for bit (same negatives, same step), then part.
    a, _ = _tables_per_epoch(lr=1.0, burn_in=1, burn_in_lr_factor=0.5)
    b, _ = _tables_per_epoch(lr=2.0, burn_in=1, burn_in_lr_factor=0.25)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1], b[1])
    # and the factor matters: the default 0.1 moves the rows less in the burn-in epoch
    c, _ = _tables_per_epoch(lr=1.0, burn_in=1)
    init, _ = _tables_per_epoch(lr=1.0, burn_in=1, epochs=1, burn_in_lr_factor=1e-300)
    moved_a = np.asarray(poincare.dist(a[0], init[0]))
    moved_c = np.asarray(poincare.dist(c[0], init[0]))
    assert moved_c.max() < 0.5 * moved_a.max()


def test_zero_burn_in_ignores_the_burn_in_settings_bit_for_bit():
    plain, plain_losses = _tables_per_epoch(burn_in=0)
    other, other_losses = _tables_per_epoch(
        burn_in=0, burn_in_lr_factor=0.01, burn_in_negatives=2, burn_in_unigram_power=1.0
    )
    for p, o in zip(plain, other, strict=True):
        np.testing.assert_array_equal(p, o)
    np.testing.assert_array_equal(plain_losses, other_losses)
    # the same settings change a run that has a burn-in
    with_burn_in, _ = _tables_per_epoch(burn_in=2)
    changed, _ = _tables_per_epoch(
        burn_in=2, burn_in_lr_factor=0.01, burn_in_negatives=2, burn_in_unigram_power=1.0
    )
    assert not np.allclose(with_burn_in[0], changed[0])


def test_burn_in_epochs_draw_burn_in_negatives_and_the_main_epochs_all():
    kw = dict(burn_in=2, burn_in_lr_factor=0.5)
    fewer, _ = _tables_per_epoch(negatives=6, burn_in_negatives=3, epochs=4, **kw)
    three, _ = _tables_per_epoch(negatives=3, epochs=4, **kw)
    six, _ = _tables_per_epoch(negatives=6, epochs=4, **kw)
    # burn-in: exactly the run with 3 negatives (the same draws, bit for bit) ...
    for e in (0, 1):
        np.testing.assert_array_equal(fewer[e], three[e])
    assert not np.allclose(fewer[0], six[0])
    # ... then 6 negatives: the main epochs part from the 3-negative run
    assert not np.allclose(fewer[3], three[3])
    # burn_in_negatives = negatives is the default, bit for bit
    same, _ = _tables_per_epoch(negatives=6, burn_in_negatives=6, epochs=4, **kw)
    np.testing.assert_array_equal(same[3], six[3])


@pytest.mark.parametrize("power", [0.0, 0.75, 1.0, 400.0])
def test_burn_in_unigram_power_shapes_the_negative_distribution(power):
    counts = np.bincount(TREE.edges[:, 1], minlength=TREE.num_nodes).astype(np.float64)
    cdf = np.asarray(trainer_module._tables(TREE, power).unigram_cdf, np.float64)
    want = (counts / counts.max()) ** power
    np.testing.assert_allclose(np.diff(cdf, prepend=0.0), want / want.sum(), atol=1e-6)
    assert np.isfinite(cdf).all()
    # a leaf's only rejected candidates are itself and its 3 ancestors: draw for a leaf
    tables = trainer_module._tables(TREE, power)
    u = jnp.full((20_000,), TREE.index("r000"), jnp.int32)
    cand, _ = trainer_module._sample_negatives(jax.random.key(1), u, tables, 1, True)
    freq = np.bincount(np.asarray(cand).ravel(), minlength=TREE.num_nodes) / u.size
    np.testing.assert_allclose(freq, want / want.sum(), atol=0.02)
