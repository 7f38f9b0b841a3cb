"""Link-prediction metrics (the protocol of Ganea et al. 2018) against brute force, the
is-a score against its formula, and the HGCN trainer's settings and message edges."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.data import EdgeList, closure_split, closure_under, load_mammal_closure
from spiraljax.embedding import EmbedConfig, train
from spiraljax.embedding.hgcn_embedding import HGCNConfig, message_edges
from spiraljax.embedding.link_prediction import (
    ALPHAS,
    best_f1_threshold,
    classification_metrics,
    evaluate_link_prediction,
    isa_scores,
    roc_auc,
)
from spiraljax.geometry import lorentz, poincare

RNG = np.random.default_rng(6)
SPLIT = closure_split(
    closure_under(load_mammal_closure(), "canine.n.02"),
    non_basic_fraction=0.25,
    valid_fraction=0.2,
    test_fraction=0.2,
)


def _scores(n_pos=40, n_neg=300):
    # rounded, so that ties occur
    return np.round(RNG.normal(1, 1, n_pos), 1), np.round(RNG.normal(0, 1, n_neg), 1)


def test_best_threshold_is_the_best_of_all_thresholds():
    for _ in range(5):
        pos, neg = _scores()
        t, f1 = best_f1_threshold(pos, neg)
        brute = max(classification_metrics(pos, neg, c)[2] for c in np.r_[pos, neg])
        assert f1 == pytest.approx(brute, abs=1e-12)
        assert classification_metrics(pos, neg, t)[2] == pytest.approx(f1, abs=1e-12)


def test_classification_metrics_by_hand():
    p, r, f1 = classification_metrics([3.0, 2.0, 0.5], [2.5, 0.0, -1.0, 1.0], threshold=1.0)
    # predicted: pos 3, 2 (tp 2, fn 1); neg 2.5, 1.0 (fp 2)
    assert (p, r) == (0.5, 2 / 3) and f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))


def test_auc_is_the_pairwise_order_with_half_ties():
    pos, neg = _scores(30, 50)
    diff = pos[:, None] - neg[None, :]
    brute = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert roc_auc(pos, neg) == pytest.approx(brute, abs=1e-12)
    assert roc_auc([2.0, 3.0], [0.0, 1.0]) == 1.0 and roc_auc([0.0], [1.0]) == 0.0


def test_isa_score_formula_on_the_ball_and_equal_on_the_hyperboloid():
    x = poincare.expmap0(jnp.asarray(RNG.normal(0, 0.7, (12, 3))), curvature=-1.0)
    pairs = RNG.integers(0, 12, (20, 2))
    got = isa_scores(np.asarray(x), pairs, alpha=3.0)
    u, v = np.asarray(x)[pairs[:, 0]], np.asarray(x)[pairs[:, 1]]
    d = np.asarray(poincare.dist(u, v))
    want = -(1 + 3.0 * (np.linalg.norm(v, axis=1) - np.linalg.norm(u, axis=1))) * d
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the same points on the hyperboloid of the same curvature (an isometry), K = −2
    xk = poincare.expmap0(jnp.asarray(RNG.normal(0, 0.5, (12, 3))), curvature=-2.0)
    h = lorentz.from_poincare(xk, curvature=-2.0)
    a = isa_scores(np.asarray(xk), pairs, curvature=-2.0, alpha=1.0)
    b = isa_scores(np.asarray(h), pairs, manifold="lorentz", curvature=-2.0, alpha=1.0)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_evaluation_picks_alpha_and_threshold_on_validation():
    x = np.asarray(poincare.expmap0(jnp.asarray(RNG.normal(0, 0.5, (SPLIT.num_nodes, 2)))))
    m = evaluate_link_prediction(x, SPLIT)
    best = max(
        (
            best_f1_threshold(
                isa_scores(x, SPLIT.valid, alpha=a), isa_scores(x, SPLIT.valid_negatives, alpha=a)
            )[1],
            -i,
        )
        for i, a in enumerate(ALPHAS)
    )
    assert m.valid_f1 == pytest.approx(best[0]) and m.alpha == ALPHAS[-best[1]]
    tp = isa_scores(x, SPLIT.test, alpha=m.alpha)
    tn = isa_scores(x, SPLIT.test_negatives, alpha=m.alpha)
    assert m.test_f1 == pytest.approx(classification_metrics(tp, tn, m.threshold)[2])
    assert m.test_auc == pytest.approx(roc_auc(tp, tn))


def test_training_improves_over_a_random_embedding_and_reports_checkpoints():
    seen = []
    graph = SPLIT.train_graph()
    res = train(
        graph,
        EmbedConfig(dim=3, epochs=20, batch_size=16, lr=0.5, burn_in=2),
        progress=False,
        table_callback=lambda e, t: seen.append((e, np.asarray(t).copy())),
    )
    assert [e for e, _ in seen] == list(range(20))
    np.testing.assert_array_equal(seen[-1][1], res.embedding)
    trained = evaluate_link_prediction(res.embedding, SPLIT)
    start = evaluate_link_prediction(seen[0][1], SPLIT)
    assert trained.test_auc > 0.7 and trained.test_auc > start.test_auc


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: isa_scores(np.zeros((3, 2)), [[0, 1]], manifold="klein"), "manifold='klein'"),
        (lambda: isa_scores(np.zeros((3, 2)), [[0, 1]], curvature=0.0), "curvature=0.0"),
        (lambda: best_f1_threshold([], [1.0]), "need positives and negatives"),
        (lambda: roc_auc([np.nan], [1.0]), "finite"),
        (lambda: evaluate_link_prediction(np.zeros((3, 2)), SPLIT), "3 rows"),
        (lambda: HGCNConfig(aggregation="sum"), "aggregation='sum'"),
        (lambda: HGCNConfig(activation="gelu"), "activation='gelu'"),
        (lambda: HGCNConfig(curvature=0.0), "curvature=0.0"),
        (lambda: HGCNConfig(layers=0), "layers=0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_message_edges_both_ways_self_loops_and_padding():
    g = EdgeList(("a", "b", "c"), np.array([[0, 1], [2, 1]], np.int32), "t")
    s, r = message_edges(g, 10)
    pairs = set(zip(s[:7].tolist(), r[:7].tolist(), strict=True))
    assert pairs == {(0, 1), (1, 0), (2, 1), (1, 2), (0, 0), (1, 1), (2, 2)}
    assert s[7:].tolist() == [3] * 3 and r[7:].tolist() == [3] * 3  # the dummy node
    s, r = message_edges(g, directed=True)
    assert len(s) == 8 and set(zip(s[:2].tolist(), r[:2].tolist(), strict=True)) == {(1, 0), (1, 2)}
    with pytest.raises(ValueError, match="edge_capacity=5"):
        message_edges(g, 5)
    assert jax.numpy.asarray(s).dtype == jnp.int32
