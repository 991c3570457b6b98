"""Choosing the model: every candidate family searched over its space by time-ordered,
expanding-window folds inside the training split, within a time budget, on a sample that keeps every
positive and a capped number of negatives (weighted back, so scores stay honest).

A fold never trains on rows later than the ones it is judged on. Optuna's TPE sampler is seeded, so
the same rows, settings and seed give the same trials and the same winner (as long as the trials
finish within the budget: a budget that cuts a search short is reported, and then depends on the
machine's speed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.models import FAMILIES, build_model, fit_model


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


@dataclass
class Trial:
    family: str
    params: dict[str, Any]
    fold_scores: list[float]
    seconds: float

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
    best_by_family: dict[str, Trial] = field(default_factory=dict)

    def candidates_table(self) -> list[dict[str, Any]]:
        """One row per family: its best trial's score, spread over folds and parameters."""
        rows = []
        for family, trial in self.best_by_family.items():
            tried = [t for t in self.trials if t.family == family]
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


def cross_validate(
    family: str,
    params: Mapping[str, Any],
    x: pd.DataFrame,
    y: np.ndarray,
    weights: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    categorical: list[str],
    numeric: list[str],
    metric: str,
    seed: int,
) -> list[float]:
    """The metric on each fold's judged block, after fitting on the fold's earlier rows."""
    scores = []
    for train_rows, judged_rows in folds:
        model = build_model(family, categorical, numeric, params, seed)
        fit_model(model, x.iloc[train_rows], y[train_rows], weights[train_rows])
        predicted = model.predict_proba(x.iloc[judged_rows])[:, 1]
        scores.append(_score(metric, y[judged_rows], predicted, weights[judged_rows]))
    return scores


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


def one_standard_error_winner(best_by_family: Mapping[str, Trial]) -> Trial:
    """The simplest family (in `FAMILIES` order) whose mean fold score is within one standard
    error of the best one's: a lead smaller than the folds' own spread is noise, and the simpler
    model is the safer bet on rows not seen yet (the one-standard-error rule)."""
    best = max(best_by_family.values(), key=lambda t: t.score)
    spread = float(np.std(best.fold_scores, ddof=1)) if len(best.fold_scores) > 1 else 0.0
    margin = spread / np.sqrt(len(best.fold_scores))
    rank = {family: i for i, family in enumerate(FAMILIES)}
    close = [t for t in best_by_family.values() if t.score >= best.score - margin]
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
    best trial is its candidate, and the winner is chosen among them by the one-standard-error
    rule."""
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
            scores = cross_validate(
                family, params, x_sample, y_sample, weights, folds, categorical, numeric,
                plan.metric, plan.seed,
            )  # fmt: skip
            trials.append(Trial(family, params, scores, time.monotonic() - began))
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
    winner = one_standard_error_winner(best_by_family)
    return Selection(
        winner=winner,
        trials=trials,
        sample_rows=len(rows),
        sample_positives=int(y_sample.sum()),
        negative_weight=negative_weight,
        folds_used=len(folds),
        budget_reached=budget_reached,
        seconds=time.monotonic() - started,
        best_by_family=best_by_family,
    )
