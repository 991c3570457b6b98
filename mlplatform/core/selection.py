"""Choosing the model: every candidate family searched over its space by time-ordered,
expanding-window folds inside the training split, within a time budget, on a sample that keeps every
positive and a capped number of negatives (weighted back, so scores stay honest).

A fold never trains on rows later than the ones it is judged on. Optuna's TPE sampler is seeded, so
the same rows, settings and seed give the same trials and the same winner (as long as the trials
finish within the budget: a budget that cuts a search short is reported, and then depends on the
machine's speed).

The candidates are each family's best trial and, on training splits small enough that refitting
every family is cheap, their soft vote (the mean of their probabilities), scored on the same folds
from the predictions the search already made. The winner is chosen by the one-standard-error rule
(`one_standard_error_winner`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.models import FAMILIES, SOFT_VOTE, build_model, fit_model


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a number in [low, high], on a log scale or not, an integer or
    not."""

    low: float
    high: float
    log: bool
    integer: bool


@dataclass(frozen=True)
class FamilySpace:
    """A family's fixed hyperparameters, and those searched (the fixed ones are the first trial,
    so the family at its settings is always among the candidates)."""

    fixed: Mapping[str, Any]
    search: Mapping[str, Dimension]


@dataclass(frozen=True)
class SearchPlan:
    families: Mapping[str, FamilySpace]
    metric: str
    folds: int
    trials_per_family: int
    time_budget_seconds: float
    max_negatives: int
    seed: int
    # The soft vote is a candidate only when the training split has at most this many rows.
    soft_vote_max_training_rows: int


@dataclass
class Trial:
    family: str
    params: dict[str, Any]
    fold_scores: list[float]
    seconds: float
    # The probabilities each fold's model gave its judged rows: the soft vote averages them.
    fold_predictions: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)
    # The soft vote's: each family's best trial, whose params `params` holds as `<family>.<name>`.
    members: tuple[Trial, ...] = ()

    @property
    def families(self) -> list[str]:
        """The model families a model of this candidate is made of."""
        return [m.family for m in self.members] if self.members else [self.family]

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores)) if self.fold_scores else float("nan")


@dataclass
class Selection:
    winner: Trial
    trials: list[Trial]
    sample_rows: int
    sample_positives: int
    negative_weight: float
    folds_used: int
    budget_reached: bool
    seconds: float
    # Each family's best trial, and the soft vote when it was a candidate, by name.
    candidates: dict[str, Trial] = field(default_factory=dict)

    def candidates_table(self) -> list[dict[str, Any]]:
        """One row per candidate (each family's best trial, and the soft vote when it was one):
        its score, spread over folds and parameters."""
        rows = []
        for family, trial in self.candidates.items():
            # The soft vote is scored once, from its members' trials.
            tried = [t for t in self.trials if t.family == family] or [trial]
            rows.append(
                {
                    "family": family,
                    "selected": trial is self.winner,
                    "score": round(trial.score, 6),
                    "fold_std": round(float(np.std(trial.fold_scores)), 6),
                    "trials": len(tried),
                    "seconds": round(sum(t.seconds for t in tried), 2),
                    "params": {k: _plain(v) for k, v in trial.params.items()},
                }
            )
        return sorted(rows, key=lambda row: -row["score"])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def search_sample(
    labels: np.ndarray, max_negatives: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(row positions in time order, their weights, the negatives' weight): every positive and at
    most `max_negatives` negatives drawn with a fixed seed; a kept negative weighs for those left
    out."""
    labels = np.asarray(labels).astype(bool)
    negatives = np.flatnonzero(~labels)
    if len(negatives) <= max_negatives:
        return np.arange(len(labels)), np.ones(len(labels)), 1.0
    rng = np.random.default_rng(seed)
    kept = rng.choice(negatives, max_negatives, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(labels), kept]))
    weight = len(negatives) / max_negatives
    return rows, np.where(labels[rows], 1.0, weight), weight


def expanding_folds(rows: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows in time order cut into `folds + 1` blocks: fold k trains on blocks 0..k and is judged
    on block k+1, so it never trains on anything later than what it is judged on."""
    edges = np.linspace(0, rows, folds + 2).astype(int)
    return [
        (np.arange(0, edges[k + 1]), np.arange(edges[k + 1], edges[k + 2])) for k in range(folds)
    ]


def _score(metric: str, labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if metric == "roc_auc":
        return float(roc_auc_score(labels, scores, sample_weight=weights))
    if metric == "pr_auc":
        return float(average_precision_score(labels, scores, sample_weight=weights))
    raise ValueError(f"selection metric must be roc_auc or pr_auc, not '{metric}'")


def fold_predictions(
    family: str,
    params: Mapping[str, Any],
    x: pd.DataFrame,
    y: np.ndarray,
    weights: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    categorical: list[str],
    numeric: list[str],
    seed: int,
) -> list[np.ndarray]:
    """Each fold's judged block scored by the model fitted on the fold's earlier rows."""
    predictions = []
    for train_rows, judged_rows in folds:
        model = build_model(family, categorical, numeric, params, seed)
        fit_model(model, x.iloc[train_rows], y[train_rows], weights[train_rows])
        predictions.append(model.predict_proba(x.iloc[judged_rows])[:, 1])
    return predictions


def fold_scores(
    metric: str,
    y: np.ndarray,
    weights: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    predictions: Sequence[np.ndarray],
) -> list[float]:
    """The metric on each fold's judged block."""
    return [
        _score(metric, y[judged], predicted, weights[judged])
        for (_, judged), predicted in zip(folds, predictions, strict=True)
    ]


def soft_vote_candidate(
    best_by_family: Mapping[str, Trial],
    y: np.ndarray,
    weights: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    metric: str,
) -> Trial:
    """The mean of the families' best trials' probabilities, scored on the folds they were scored
    on: the same fitted fold models, so it costs no fit."""
    began = time.monotonic()
    members = tuple(best_by_family.values())
    averaged = [
        np.mean([m.fold_predictions[k] for m in members], axis=0) for k in range(len(folds))
    ]
    return Trial(
        SOFT_VOTE,
        {f"{m.family}.{name}": value for m in members for name, value in m.params.items()},
        fold_scores(metric, y, weights, folds, averaged),
        time.monotonic() - began,
        fold_predictions=averaged,
        members=members,
    )


def _usable_folds(y: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds whose training rows and judged block both hold the two classes."""
    return [
        (fit, judged)
        for fit, judged in expanding_folds(len(y), folds)
        if len(np.unique(y[fit])) == 2 and len(np.unique(y[judged])) == 2
    ]


def describe_params(params: Mapping[str, Any]) -> str:
    """`C=0.1, max_iter=300`: hyperparameters as a person reads them (floats to 4 digits)."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _suggest(trial: Any, name: str, dimension: Dimension) -> Any:
    if dimension.integer:
        return trial.suggest_int(name, int(dimension.low), int(dimension.high), log=dimension.log)
    return trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)


# Among candidates the folds cannot tell apart, the safest bet on rows not seen yet comes first.
# The soft vote bets on no one family: when the folds cannot rank the families, a plain average of
# them does, out of sample, usually at least as well as the one that happened to lead (the
# forecast-combination result), and it is the pick least moved by which rows the folds held.
# Then the families, simplest first (the usual reading of the one-standard-error rule).
PREFERENCE = (SOFT_VOTE, *FAMILIES)


def one_standard_error_winner(candidates: Mapping[str, Trial]) -> Trial:
    """The first candidate in `PREFERENCE` order whose mean fold score is within one standard error
    of the best one's (the one-standard-error rule): a lead smaller than the folds' own spread is
    noise, and choosing by it would follow the noise."""
    best = max(candidates.values(), key=lambda t: t.score)
    spread = float(np.std(best.fold_scores, ddof=1)) if len(best.fold_scores) > 1 else 0.0
    margin = spread / np.sqrt(len(best.fold_scores))
    rank = {name: i for i, name in enumerate(PREFERENCE)}
    close = [t for t in candidates.values() if t.score >= best.score - margin]
    return min(close, key=lambda t: (rank.get(t.family, len(rank)), -t.score))


def select_model(
    x: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    numeric: list[str],
    plan: SearchPlan,
    log: Callable[[str], None] = lambda message: None,
) -> Selection:
    """Search every family of `plan` on the time-ordered training rows `x`, `y`; each family's
    best trial is its candidate, so is their soft vote when the training split has at most
    `plan.soft_vote_max_training_rows` rows, and the winner is chosen among them by the
    one-standard-error rule."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    rows, weights, negative_weight = search_sample(y, plan.max_negatives, plan.seed)
    x_sample, y_sample = x.iloc[rows], np.asarray(y)[rows]
    folds = _usable_folds(y_sample, plan.folds)
    if not folds:
        raise ValueError(
            f"no time-ordered fold of the {len(rows)} training rows holds both classes; "
            "widen the window or lower `folds`"
        )
    trials: list[Trial] = []
    budget_reached = False
    families = list(plan.families)
    log(
        f"model search: {', '.join(families)}; up to {plan.trials_per_family} trials each on "
        f"{len(rows)} rows ({int(y_sample.sum())} positives), {len(folds)} time-ordered folds, "
        f"budget {plan.time_budget_seconds:g} s"
    )
    for position, family in enumerate(families):
        space = plan.families[family]
        remaining = plan.time_budget_seconds - (time.monotonic() - started)
        # Each family gets an equal share of what is left, so a slow one cannot starve the rest.
        share = remaining / (len(families) - position)

        def objective(trial: Any, family: str = family, space: FamilySpace = space) -> float:
            params = {**space.fixed}
            params.update({n: _suggest(trial, n, d) for n, d in space.search.items()})
            began = time.monotonic()
            predictions = fold_predictions(
                family, params, x_sample, y_sample, weights, folds, categorical, numeric,
                plan.seed,
            )  # fmt: skip
            scores = fold_scores(plan.metric, y_sample, weights, folds, predictions)
            trials.append(Trial(family, params, scores, time.monotonic() - began, predictions))
            # A long search says where it is: one line per trial.
            log(
                f"{family} trial {trial.number + 1}/{plan.trials_per_family}: {plan.metric} "
                f"{np.mean(scores):.4f} in {time.monotonic() - began:.1f} s "
                f"({describe_params(params)})"
            )
            return float(np.mean(scores))

        # TPE models the space after its random start-up trials: a third of the trials (Optuna's
        # default of 10 would leave a short search all random).
        sampler = optuna.samplers.TPESampler(
            seed=plan.seed + position, n_startup_trials=max(2, plan.trials_per_family // 3)
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        # The first trial is the family as the settings fix it.
        study.enqueue_trial({n: space.fixed[n] for n in space.search}, skip_if_exists=True)
        before = len(trials)
        study.optimize(objective, n_trials=plan.trials_per_family, timeout=max(share, 1e-3))
        tried = len(trials) - before
        if tried < plan.trials_per_family:
            budget_reached = True
        best = max((t for t in trials[before:]), key=lambda t: t.score, default=None)
        log(
            f"{family}: {tried} trials, best {plan.metric} "
            f"{best.score if best else float('nan'):.4f}"
        )
    scored = [t for t in trials if np.isfinite(t.score)]
    if not scored:
        raise ValueError("no candidate could be scored")
    best_by_family: dict[str, Trial] = {}
    for trial in scored:
        if trial.family not in best_by_family or trial.score > best_by_family[trial.family].score:
            best_by_family[trial.family] = trial
    candidates = dict(best_by_family)
    if len(best_by_family) > 1 and len(y) > plan.soft_vote_max_training_rows:
        log(
            f"{SOFT_VOTE}: not a candidate on {len(y)} training rows (its refit fits every "
            f"family; at most {plan.soft_vote_max_training_rows} rows)"
        )
    elif len(best_by_family) > 1:
        vote = soft_vote_candidate(best_by_family, y_sample, weights, folds, plan.metric)
        candidates[SOFT_VOTE] = vote
        log(f"{SOFT_VOTE} of {', '.join(best_by_family)}: {plan.metric} {vote.score:.4f}")
    winner = one_standard_error_winner(candidates)
    return Selection(
        winner=winner,
        trials=trials,
        sample_rows=len(rows),
        sample_positives=int(y_sample.sum()),
        negative_weight=negative_weight,
        folds_used=len(folds),
        budget_reached=budget_reached,
        seconds=time.monotonic() - started,
        candidates=candidates,
    )
