"""Training examples as features: retraining games, and Captum's DataInfluence face.

Ground truth here is retraining itself: every subset for small n (brute
force), planted duplicates and flipped labels in real digits, and
counterfactual retraining without the examples of a predicted pair.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brute_force import all_masks, mobius
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from torch.utils.data import TensorDataset

import proxyspex_captum as psx
from proxyspex_captum.data import retraining_game, training_game
from proxyspex_captum.influence import ProxySPEXInfluence, SPEXInfluence


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data / 16.0, data.target


def _subset(X, y, rng, n_per_class, classes=(0, 1, 2)):
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), n_per_class, replace=False) for c in classes]
    )
    return X[rows], y[rows]


# -- brute force: every subset of a few training examples ---------------------------


@pytest.mark.parametrize(
    "estimator",
    [KNeighborsClassifier(n_neighbors=3), LogisticRegression(C=1.0, max_iter=500)],
    ids=["knn", "logistic"],
)
def test_every_retraining_of_a_few_examples_is_reproduced_exactly(digits, estimator):
    X, y = digits
    X_train, y_train = _subset(X, y, np.random.default_rng(0), 3, classes=(0, 1, 2))
    X_train, y_train = X_train[:8], y_train[:8]  # classes 0, 0, 0, 1, 1, 1, 2, 2
    game = retraining_game(estimator, X_train, y_train, X[-3:], np.array([0, 1, 2]))
    masks = all_masks(8)
    table = game(masks)  # (256, 3): every retraining, one column per test point
    assert table.shape == (256, 3) and np.isfinite(table).all()
    assert game.n_fallbacks > 0  # the empty set and one-class subsets got the prior
    inters = psx.ProxySPEX(max_order=8, random_state=0).explain(game, 8, 256)
    assert len(inters) == 3
    for j, inter in enumerate(inters):
        np.testing.assert_allclose(inter.predict(masks), table[:, j], atol=1e-6)
        truth = mobius(table[:, j], 8)
        for subset, value in truth.items():
            assert inter.mobius.get(subset, 0.0) == pytest.approx(value, abs=1e-6)


def test_a_seeded_estimator_gives_the_same_model_for_the_same_subset(digits):
    from sklearn.ensemble import RandomForestClassifier

    X, y = digits
    X_train, y_train = _subset(X, y, np.random.default_rng(1), 5)
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    game = retraining_game(forest, X_train, y_train, X[-4:], y[-4:] % 3)
    masks = np.random.default_rng(2).random((6, len(X_train))) < 0.7
    np.testing.assert_array_equal(game(masks), game(masks))
    threaded = retraining_game(forest, X_train, y_train, X[-4:], y[-4:] % 3, n_jobs=2)
    np.testing.assert_array_equal(threaded(masks), game(masks))


# -- planted structure in real digits ------------------------------------------------


def _by_distance(X, y, point, label):
    """Rows of class ``label``, nearest to ``point`` first."""
    rows = np.flatnonzero(y == label)
    return rows[np.argsort(((X[rows] - point) ** 2).sum(axis=1))]


def test_duplicates_are_redundant_pairs(digits):
    X, y = digits
    point, pool_X, pool_y = X[-1], X[:-1], y[:-1]
    label = y[-1]
    same = _by_distance(pool_X, pool_y, point, label)
    other = _by_distance(pool_X, pool_y, point, (label + 1) % 10)
    # The nearest example of the test point's class, twice; the other class next;
    # the rest of its class far away. 1-NN is right while either copy is kept.
    rows = np.concatenate([same[:1], same[:1], other[:8], same[-8:]])
    X_train, y_train = pool_X[rows], pool_y[rows]
    distances = ((X_train - point) ** 2).sum(axis=1)
    assert distances[1] < distances[2:10].min() and distances[2:10].max() < distances[10:].min()
    game = retraining_game(KNeighborsClassifier(1), X_train, y_train, [point], [label])
    inter = psx.ProxySPEX(max_order=3, random_state=0).explain(game, 18, 600)
    assert inter.mobius.get((0, 1), 0.0) < -10  # an OR: removing both is what costs
    # Counterfactual retraining without either copy and without both: the truth agrees.
    masks = np.ones((4, 18), dtype=bool)
    masks[1, 0] = masks[2, 1] = False
    masks[3, :2] = False
    full, without_i, without_j, without_both = game(masks).ravel()
    true_pair = full - without_i - without_j + without_both
    predicted = inter.predict(masks)
    assert true_pair < -10
    assert predicted[0] - predicted[1] - predicted[2] + predicted[3] == pytest.approx(
        true_pair, rel=0.2
    )


def test_a_flipped_label_is_a_strong_opponent(digits):
    X, y = digits
    point, pool_X, pool_y = X[-2], X[:-2], y[:-2].copy()
    label = y[-2]
    same = _by_distance(pool_X, pool_y, point, label)
    other = _by_distance(pool_X, pool_y, point, (label + 1) % 10)
    rows = np.concatenate([same[:9], other[-8:]])
    X_train, y_train = pool_X[rows], pool_y[rows].copy()
    y_train[0] = (label + 1) % 10  # the nearest example, mislabelled
    game = retraining_game(KNeighborsClassifier(1), X_train, y_train, [point], [label])
    shapley = psx.ProxySPEX(max_order=3, random_state=0).explain(game, 17, 600).first_order()
    assert shapley[0] == shapley.min() and shapley[0] < -10


# -- bad input is refused before any retraining --------------------------------------


class NotAnEstimator:
    pass


def test_bad_input_is_refused_before_any_fit(digits):
    X, y = digits
    X_train, y_train = X[:20], y[:20]
    knn = KNeighborsClassifier(1)
    with pytest.raises(TypeError, match="cloned"):
        retraining_game(NotAnEstimator(), X_train, y_train, X[-2:], y[-2:])
    with pytest.raises(ValueError, match="one label per example"):
        retraining_game(knn, X_train, y_train[:-1], X[-2:], y[-2:])
    with pytest.raises(ValueError, match="needs y_test"):
        retraining_game(knn, X_train, y_train, X[-2:])
    with pytest.raises(ValueError, match="never shows"):
        retraining_game(knn, X_train[y_train < 5], y_train[y_train < 5], X[-2:], [9, 9])
    with pytest.raises(ValueError, match="shape"):
        retraining_game(knn, X_train, y_train, X[-2:, :10], y[-2:])
    with pytest.raises(ValueError, match="reshape"):
        retraining_game(knn, X_train[:, 0], y_train, X[-2:, 0], y[-2:])
    with pytest.raises(ValueError, match="NaN"):
        retraining_game(knn, np.where(X_train > 0.9, np.nan, X_train), y_train, X[-2:], y[-2:])
    with pytest.raises(ValueError, match="one label per test point"):
        retraining_game(knn, X_train, y_train, X[-2:], 3)
    with pytest.raises(ValueError, match="one group label"):
        retraining_game(knn, X_train, y_train, X[-2:], y[-2:], groups=[0, 1])
    with pytest.raises(ValueError, match="for regressors"):
        retraining_game(knn, X_train, y_train, X[-2:], y[-2:], output="prediction")
    with pytest.raises(ValueError, match="Unknown output"):
        retraining_game(knn, X_train, y_train, X[-2:], y[-2:], output="logit")
    with pytest.raises(ValueError, match="y_train holds NaN"):
        retraining_game(knn, X_train, np.where(y_train == 3, np.nan, y_train), X[-2:], y[-2:])
    with pytest.raises(ValueError, match="y_test holds NaN"):
        retraining_game(knn, X_train, y_train, X[-2:], [np.nan, 1.0])
    # One-vs-one scores of 3 classes have 3 columns too: read as one score per class
    # they gave correctly classified points negative margins.
    three = y_train < 3
    with pytest.raises(TypeError, match="pairs of classes"):
        retraining_game(
            SVC(decision_function_shape="ovo"), X_train[three], y_train[three], X[:2], y[:2] % 3
        )
    game = retraining_game(knn, X_train, y_train, X[-2:], y[-2:])
    with pytest.raises(ValueError, match="shape"):
        game(np.ones((2, 5), dtype=bool))
    with pytest.raises(ValueError, match="no rows"):
        game(np.zeros((0, 20), dtype=bool))


def test_margins_probabilities_and_losses_by_hand(digits):
    X, y = digits
    X_train, y_train = _subset(X, y, np.random.default_rng(5), 6, classes=(0, 1, 2))
    X_test, y_test = X[-6:][np.isin(y[-6:], (0, 1, 2))], y[-6:][np.isin(y[-6:], (0, 1, 2))]
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    p = model.predict_proba(X_test)
    rows = np.arange(len(y_test))
    p_true = p[rows, y_test]
    others = p.copy()
    others[rows, y_test] = 0
    everything = np.ones((1, len(X_train)), dtype=bool)
    expected = {
        "margin": np.log(p_true) - np.log(others.max(axis=1)),
        "probability": p_true,
        "loss": -np.log(p_true),
    }
    for output, values in expected.items():
        game = retraining_game(
            LogisticRegression(max_iter=500), X_train, y_train, X_test, y_test, output=output
        )
        np.testing.assert_allclose(game(everything)[0], values, rtol=1e-6)


def test_decision_values_of_a_model_without_probabilities(digits):
    from sklearn.svm import LinearSVC

    X, y = digits
    X_train, y_train = _subset(X, y, np.random.default_rng(6), 6, classes=(3, 8))
    X_test, y_test = X[-40:][np.isin(y[-40:], (3, 8))][:3], y[-40:][np.isin(y[-40:], (3, 8))][:3]
    model = LinearSVC(random_state=0).fit(X_train, y_train)
    d = model.decision_function(X_test)  # the score of class 8 against class 3
    game = retraining_game(LinearSVC(random_state=0), X_train, y_train, X_test, y_test)
    everything = np.ones((1, len(X_train)), dtype=bool)
    np.testing.assert_allclose(game(everything)[0], np.where(y_test == 8, d, -d), rtol=1e-6)
    one_class = np.isin(np.arange(len(X_train)), np.flatnonzero(y_train == 3)[:2])
    np.testing.assert_array_equal(game(one_class[None])[0], 0.0)  # no preference
    assert game.n_fallbacks == 1


def test_unfittable_subsets_get_the_prior_and_a_note(digits):
    X, y = digits
    rows = np.flatnonzero(y < 2)[:10]
    game = retraining_game(LogisticRegression(), X[rows], y[rows], X[-1:], [y[rows][0]])
    one_class = (y[rows] == y[rows][0]) & (np.arange(10) < 9)
    values = game(np.vstack([np.zeros(10, bool), one_class]))
    assert np.isfinite(values).all() and game.n_fallbacks == 2
    assert any("class" in note or "empty" in note for note in game.notes)


def test_groups_make_features_of_whole_groups(digits):
    X, y = digits
    X_train, y_train = X[:30], y[:30]
    groups = np.repeat(np.arange(6), 5)
    game = retraining_game(
        KNeighborsClassifier(1), X_train, y_train, X[-3:], y[-3:], groups=groups
    )
    assert game.n_features == 6
    mask = np.zeros(6, dtype=bool)
    mask[[1, 4]] = True
    np.testing.assert_array_equal(game.indices(mask), [*range(5, 10), *range(20, 25)])


def test_a_regression_game_scores_predictions_and_squared_errors():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    prediction = retraining_game(Ridge(), X[:12], y[:12], X[-2:], output="prediction")
    loss = retraining_game(Ridge(), X[:12], y[:12], X[-2:], y[-2:], output="loss")
    mask = np.ones((1, 12), dtype=bool)
    np.testing.assert_allclose(loss(mask), (prediction(mask) - y[-2:]) ** 2)
    assert prediction(np.zeros((1, 12), dtype=bool)) == pytest.approx(y[:12].mean())


# -- Captum's DataInfluence face, on a torch training loop ---------------------------


def _torch_problem(digits):
    X, y = digits
    rows = np.flatnonzero(y < 3)[:24]
    X_train = torch.tensor(X[rows], dtype=torch.float32)
    y_train = torch.tensor(y[rows])

    def train(indices):
        generator = torch.Generator().manual_seed(0)  # same subset, same model
        model = torch.nn.Linear(64, 3)
        with torch.no_grad():
            model.weight.copy_(0.01 * torch.randn(3, 64, generator=generator))
            model.bias.zero_()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
        if len(indices):
            for _ in range(30):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(X_train[indices]), y_train[indices])
                loss.backward()
                optimiser.step()
        return model

    test_rows = np.flatnonzero(y < 3)[-4:]
    test = (torch.tensor(X[test_rows], dtype=torch.float32), torch.tensor(y[test_rows]))
    return TensorDataset(X_train, y_train), train, test


def test_influence_has_captums_shapes_and_top_k(digits):
    dataset, train, test = _torch_problem(digits)
    influence = ProxySPEXInfluence(train(np.arange(24)), dataset, train, random_state=0)
    from captum.influence import DataInfluence

    assert isinstance(influence, DataInfluence)
    scores = influence.influence(test, budget=200)
    assert scores.shape == (4, 24) and scores.dtype == torch.float32
    top = influence.influence(test, k=3, budget=200)
    assert top.indices.shape == top.influence_scores.shape == (4, 3)
    expected = torch.topk(scores, 3, dim=1)
    torch.testing.assert_close(top.influence_scores, expected.values)
    torch.testing.assert_close(scores.gather(1, top.indices), top.influence_scores)
    bottom = influence.influence(test, k=2, proponents=False, budget=200)
    torch.testing.assert_close(
        bottom.influence_scores, torch.topk(scores, 2, largest=False).values
    )
    inters = influence.influence_interactions(test, budget=200)
    assert len(inters) == 4 and inters[0].feature_names[:2] == ["train 0", "train 1"]


def test_influence_by_groups_and_spex(digits):
    dataset, train, test = _torch_problem(digits)
    groups = np.repeat(np.arange(8), 3)
    spex = SPEXInfluence(train(np.arange(24)), dataset, train, groups=groups, random_state=0)
    scores = spex.influence(test)
    assert scores.shape == (4, 8)
    names = spex.influence_interactions(test, budget=320)[0].feature_names
    assert names[:2] == ["group 0", "group 1"]
    with pytest.raises(ValueError, match="one group label"):
        SPEXInfluence(None, dataset, train, groups=[0, 1])


def _counting(train):
    """``train`` that records the size of every subset it retrains on, and that record."""
    calls = []

    def counted(indices):
        calls.append(len(indices))
        return train(indices)

    return counted, calls


def test_a_broken_score_fn_fails_before_any_retraining(digits):
    dataset, train, test = _torch_problem(digits)
    counted, calls = _counting(train)
    influence = ProxySPEXInfluence(
        train(np.arange(24)), dataset, counted, score_fn=lambda model, inputs: [1.0, np.nan]
    )
    with pytest.raises(ValueError, match="score_fn"):
        influence.influence(test, budget=200)
    assert calls == []
    with pytest.raises(ValueError, match="k must be at most 24"):  # not after 200 retrainings
        ProxySPEXInfluence(None, dataset, counted).influence(test, k=25, budget=200)
    assert calls == []
    with pytest.raises(TypeError, match="callables"):
        ProxySPEXInfluence(None, dataset, "train")


def test_training_game_reads_tensors_and_counts_its_features():
    game = training_game(lambda idx: torch.tensor(idx, dtype=torch.float32), lambda m: m.sum(), 5)
    values = game(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=bool))
    np.testing.assert_array_equal(values.ravel(), [2.0, 4.0])


def test_influence_checks_its_options_before_any_retraining(digits):
    dataset, train, test = _torch_problem(digits)
    counted, calls = _counting(train)
    model = train(np.arange(24))
    influence = ProxySPEXInfluence(model, dataset, counted, random_state=0)
    for proponents in ("no", 0, None):
        with pytest.raises(TypeError, match="proponents must be True or False"):
            influence.influence(test, k=2, proponents=proponents, budget=200)
    # Groups as a tensor: 4 groups, not the 8 distinct 0-d tensors a set() saw.
    grouped = ProxySPEXInfluence(model, dataset, counted, groups=torch.arange(24) % 4)
    with pytest.raises(ValueError, match="k must be at most 4"):
        grouped.influence(test, k=6, budget=12)
    with pytest.raises(ValueError, match="holds 1 group"):
        ProxySPEXInfluence(model, dataset, counted, groups=[0] * 24)
    with pytest.raises(ValueError, match="one group label"):
        ProxySPEXInfluence(model, dataset, counted, groups=np.zeros((24, 2)))
    with pytest.raises(TypeError, match="n_jobs"):
        ProxySPEXInfluence(model, dataset, counted, n_jobs=2.5)
    assert ProxySPEXInfluence(model, dataset, counted, n_jobs=-1).n_jobs == -1  # joblib's "all"
    # One test point's logits: three outputs, not three test points.
    logits = ProxySPEXInfluence(model, dataset, counted, score_fn=lambda m, x: m(x[0][:1]))
    with pytest.raises(ValueError, match=r"one number per test point.*got shape \(1, 3\)"):
        logits.influence(test, budget=200)
    assert calls == []
    bottom = influence.influence(test, k=2, proponents=np.bool_(False), budget=200)
    assert bottom.indices.shape == (4, 2)


def test_the_default_score_reads_the_model_in_eval_mode(digits):
    from proxyspex_captum.influence import correct_class_margin

    *_, test = _torch_problem(digits)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 32),
            torch.nn.Dropout(0.5),
            torch.nn.BatchNorm1d(32),
            torch.nn.Linear(32, 3),
        )
    model.train()
    model[2].eval()  # frozen on purpose: it stays so
    statistics = model[2].running_mean.clone()
    first, second = correct_class_margin(model, test), correct_class_margin(model, test)
    torch.testing.assert_close(first, second)  # no dropout: the same model scores the same
    assert torch.equal(model[2].running_mean, statistics)  # the test batch taught it nothing
    assert model.training and not model[2].training  # handed back as it came


def test_a_test_point_gets_what_it_gets_alone_and_bfloat16_scores(digits):
    dataset, train, test = _torch_problem(digits)
    influence = ProxySPEXInfluence(train(np.arange(24)), dataset, train, random_state=0)
    batch = influence.influence(test, budget=200)
    backwards = influence.influence((test[0].flip(0), test[1].flip(0)), budget=200)
    torch.testing.assert_close(backwards.flip(0), batch, rtol=0, atol=1e-6)
    half = ProxySPEXInfluence(
        train(np.arange(24)),
        dataset,
        train,
        random_state=0,
        score_fn=lambda m, x: correct_class_margin_bf16(m, x),
    )
    assert half.influence(test, budget=200, show_progress=True).shape == (4, 24)


def correct_class_margin_bf16(model, inputs):
    from proxyspex_captum.influence import correct_class_margin

    return correct_class_margin(model, inputs).to(torch.bfloat16)
