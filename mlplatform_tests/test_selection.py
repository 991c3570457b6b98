"""Model selection on its own: time-ordered folds, the search sample, the seeded search, its
budget, the soft vote of the families, and the winner among the candidates."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlplatform.core.selection import expanding_folds, search_sample, select_model
from mlplatform.core.train import train_model
from mlplatform_tests.packaged import (
    bootstrap_resamples,
    calibration,
    search_plan,
    threshold_metric,
)


def test_expanding_folds_never_train_on_later_rows():
    folds = expanding_folds(1000, 3)
    assert len(folds) == 3
    for fit, judged in folds:
        assert fit.max() < judged.min()
        assert fit[0] == 0  # expanding: every fold starts at the oldest row
    sizes = [len(fit) for fit, _ in folds]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    judged_rows = np.concatenate([judged for _, judged in folds])
    assert len(judged_rows) == len(set(judged_rows))  # each row is judged once at most


def test_the_search_sample_keeps_every_positive_and_weighs_negatives_back():
    labels = np.zeros(10_000, dtype=int)
    labels[::50] = 1
    rows, weights, negative_weight = search_sample(labels, max_negatives=1000, seed=3)
    assert labels[rows].sum() == labels.sum()
    assert (labels[rows] == 0).sum() == 1000
    assert np.all(np.diff(rows) > 0)  # still in time order
    assert negative_weight == pytest.approx(9800 / 1000)
    # The weighted sample stands for the whole: as many (weighted) negatives as there were.
    assert weights[labels[rows] == 0].sum() == pytest.approx((labels == 0).sum())
    same = search_sample(labels, max_negatives=1000, seed=3)
    assert np.array_equal(same[0], rows)
    all_rows, all_weights, one = search_sample(labels, max_negatives=20_000, seed=3)
    assert len(all_rows) == len(labels) and one == 1.0 and set(all_weights) == {1.0}


def interactions(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A target no linear model can rank: positive when two features share their sign."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                      "noise": rng.normal(size=rows),
                      "colour": rng.choice(["red", "green", "blue"], rows)})  # fmt: skip
    logits = 3 * np.sign(x["a"] * x["b"]) - 1.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(int)
    return x, y


def test_the_family_that_fits_the_data_wins_and_every_family_is_a_candidate():
    x, y = interactions(4000, seed=1)
    # Bounded by trials, not by the packaged time budget (a busy machine would cut it short).
    plan = dataclasses.replace(
        search_plan(), trials_per_family=2, folds=2, time_budget_seconds=3600
    )
    progress: list[str] = []
    selection = select_model(x, y, ["colour"], ["a", "b", "noise"], plan, log=progress.append)
    table = {row["family"]: row for row in selection.candidates_table()}
    assert set(table) == {"logistic_regression", "hist_gradient_boosting", "lightgbm", "soft_vote"}
    # A long search says where it is: one line per trial, naming family, score and parameters.
    trial_lines = [line for line in progress if " trial " in line]
    assert len(trial_lines) == len(selection.trials) == 6
    assert trial_lines[0].startswith("logistic_regression trial 1/2: roc_auc 0.")
    assert selection.winner.family != "logistic_regression"
    assert table["logistic_regression"]["score"] < 0.6 < table[selection.winner.family]["score"]
    assert [row["selected"] for row in selection.candidates_table()].count(True) == 1
    assert all(len(t.fold_scores) == 2 for t in selection.trials)


def test_same_data_and_seed_give_the_same_winner_parameters_and_metrics(card_contract):
    from mlplatform.core.features import build_features, model_columns
    from mlplatform.core.validate import validate
    from mlplatform_tests.packaged import generated_day

    days = [generated_day(pd.Timestamp(f"2026-03-0{d}").date(), rows_per_day=4000)
            for d in (1, 2, 3)]  # fmt: skip
    features = build_features(validate(pd.concat(days), card_contract).validated, card_contract)
    categorical, numeric = model_columns(features, card_contract)
    # A budget no busy machine reaches: repeatability is promised for searches that finish (a
    # search cut short by its budget depends on the machine's speed, and says so).
    plan = dataclasses.replace(
        search_plan(), trials_per_family=3, folds=2, time_budget_seconds=3600
    )

    def train():
        return train_model(
            features, categorical, numeric, plan, threshold_metric(), bootstrap_resamples(),
            calibration(),
        )  # fmt: skip

    first, second = train(), train()
    assert first.family == second.family
    assert first.params == second.params
    assert first.threshold == second.threshold
    assert first.test_metrics == second.test_metrics
    assert first.test_intervals == second.test_intervals
    assert [t.fold_scores for t in first.selection.trials] == [
        t.fold_scores for t in second.selection.trials
    ]
    # Another seed searches differently: the seed is what makes it repeatable.
    other = select_model(
        features.loc[features["split"] == "train", [*categorical, *numeric]],
        features.loc[features["split"] == "train", "label"].to_numpy(),
        categorical, numeric, dataclasses.replace(plan, seed=plan.seed + 1),
    )  # fmt: skip
    assert [t.params for t in other.trials] != [t.params for t in first.selection.trials]


def test_the_search_stops_at_its_time_budget():
    x, y = interactions(20_000, seed=2)
    plan = dataclasses.replace(
        search_plan(), trials_per_family=200, folds=3, time_budget_seconds=3.0
    )
    selection = select_model(x, y, ["colour"], ["a", "b", "noise"], plan)
    assert selection.budget_reached
    tried = {f: sum(t.family == f for t in selection.trials) for f in plan.families}
    # Every family got its share of the budget and none ran its 200 trials.
    assert all(1 <= count < 200 for count in tried.values()), tried


def test_a_lead_within_the_folds_noise_goes_to_the_simpler_family():
    from mlplatform.core.selection import Trial, one_standard_error_winner

    simple = Trial("logistic_regression", {}, [0.80, 0.84, 0.82], 1.0)
    noisy_lead = Trial("lightgbm", {}, [0.79, 0.87, 0.83], 1.0)
    assert (
        one_standard_error_winner({"logistic_regression": simple, "lightgbm": noisy_lead}) is simple
    )
    clear_lead = Trial("lightgbm", {}, [0.90, 0.91, 0.92], 1.0)
    assert (
        one_standard_error_winner({"logistic_regression": simple, "lightgbm": clear_lead})
        is clear_lead
    )


def test_a_soft_vote_within_the_folds_noise_is_preferred_to_any_single_family():
    from mlplatform.core.selection import Trial, one_standard_error_winner

    simple = Trial("logistic_regression", {}, [0.80, 0.86, 0.83], 1.0)
    vote = Trial("soft_vote", {}, [0.79, 0.85, 0.81], 0.0)
    assert one_standard_error_winner({"logistic_regression": simple, "soft_vote": vote}) is vote
    # Outside the noise the vote is just another candidate: the clear leader wins.
    clear_lead = Trial("lightgbm", {}, [0.90, 0.91, 0.92], 1.0)
    candidates = {"logistic_regression": simple, "lightgbm": clear_lead, "soft_vote": vote}
    assert one_standard_error_winner(candidates) is clear_lead


def test_the_soft_vote_is_scored_from_its_members_fold_predictions_up_to_its_row_limit():
    from sklearn.metrics import roc_auc_score

    x, y = interactions(3000, seed=4)
    plan = dataclasses.replace(
        search_plan(),
        trials_per_family=2,
        folds=2,
        soft_vote_max_training_rows=len(y),
        time_budget_seconds=3600,
    )
    progress: list[str] = []
    selection = select_model(x, y, ["colour"], ["a", "b", "noise"], plan, log=progress.append)
    vote = selection.candidates["soft_vote"]
    members = [selection.candidates[f] for f in plan.families]
    assert vote.members == tuple(members) and vote.families == list(plan.families)
    assert vote.params["lightgbm.num_leaves"] == members[2].params["num_leaves"]
    # No sampling here (fewer negatives than the cap): every weight is 1, the folds are plain.
    from mlplatform.core.selection import expanding_folds

    for k, (_, judged) in enumerate(expanding_folds(len(y), plan.folds)):
        mean = np.mean([m.fold_predictions[k] for m in members], axis=0)
        assert vote.fold_scores[k] == pytest.approx(roc_auc_score(y[judged], mean))
    assert any(line.startswith("soft_vote of logistic_regression, ") for line in progress)
    # One row more than the limit: not a candidate, and the log says why.
    fewer = dataclasses.replace(plan, soft_vote_max_training_rows=len(y) - 1)
    progress.clear()
    without = select_model(x, y, ["colour"], ["a", "b", "noise"], fewer, log=progress.append)
    assert set(without.candidates) == set(plan.families)
    assert any("soft_vote: not a candidate on 3000 training rows" in line for line in progress)
    # The same trials either way: the vote is scored from them, it changes no search.
    assert [t.fold_scores for t in without.trials] == [t.fold_scores for t in selection.trials]


def test_a_soft_vote_winner_is_refit_as_the_mean_of_its_members_and_loads_from_skops(tmp_path):
    import skops.io

    from mlplatform.core.models import SKOPS_TRUSTED_TYPES, build_model, fit_model
    from mlplatform.core.selection import Trial
    from mlplatform.core.train import fit_candidate

    x, y = interactions(2000, seed=5)
    categorical, numeric = ["colour"], ["a", "b", "noise"]
    plan = search_plan()
    members = tuple(
        Trial(family, dict(plan.families[family].fixed), [0.5], 0.0) for family in plan.families
    )
    vote = Trial("soft_vote", {}, [0.5], 0.0, members=members)
    model = fit_candidate(vote, x, y, categorical, numeric, seed=3)
    alone = [
        fit_model(build_model(m.family, categorical, numeric, m.params, 3), x, y).predict_proba(x)
        for m in members
    ]
    assert np.allclose(model.predict_proba(x), np.mean(alone, axis=0))
    # Stored and loaded as every registered model is: skops, trusting only the platform's list.
    path = tmp_path / "vote.skops"
    skops.io.dump(model, path)
    assert set(skops.io.get_untrusted_types(file=path)) <= set(SKOPS_TRUSTED_TYPES)
    loaded = skops.io.load(path, trusted=list(SKOPS_TRUSTED_TYPES))
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
