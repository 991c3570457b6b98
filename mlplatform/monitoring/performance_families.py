"""After deployment, the Prometheus metric families of the newest scored days of
`model_performance`: per model version, its realized metrics and coverage, its estimate, its
backtest, realized minus backtest, and the live comparisons of the versions in shadow; one day per
version and figure, so the series stay bounded however long the history."""

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from mlplatform.monitoring.history import ScoredDayPerformance

# The realized-performance asset: one partition per scored day.
PERFORMANCE_ASSET = "model_performance"
# Realized on the labelled rows of a scored day (core/realized_performance.py: PERFORMANCE_METRICS
# and the Brier score), each with a 95% interval; the estimate has the first four.
REALIZED_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "brier")
ESTIMATED_METRICS = ("roc_auc", "pr_auc", "precision", "recall")
# Row counts behind a realized figure: metadata name -> `rows` label.
REALIZED_ROWS = {"scored_rows": "scored", "labelled_rows": "labelled", "positives": "positives"}


def _newest(
    days: Sequence[ScoredDayPerformance], has: Callable[[ScoredDayPerformance], bool]
) -> dict[tuple[str, str], ScoredDayPerformance]:
    """(model, version) -> its newest scored day for which `has` holds (the latest materialization
    of that day)."""
    chosen: dict[tuple[str, str], ScoredDayPerformance] = {}
    for day in days:
        if not has(day):
            continue
        current = chosen.get((day.model, day.version))
        if current is None or (day.day, day.timestamp) > (current.day, current.timestamp):
            chosen[(day.model, day.version)] = day
    return chosen


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def performance_metrics(days: Sequence[ScoredDayPerformance]) -> Iterator[Metric]:
    """Per model version, from the newest scored days served: realized figures and coverage on
    its newest day with a realized figure, the estimate on its newest day with one, its backtest;
    the live comparisons on the newest day each pair of versions was compared with a result."""
    version_labels = ["model", "version", "day"]

    def interval_families(name: str, text: str, labels: list[str]) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(name, text, labels=labels),
            GaugeMetricFamily(
                f"{name}_low", f"Lower end of the 95% interval of {name}.", labels=labels
            ),
            GaugeMetricFamily(
                f"{name}_high", f"Upper end of the 95% interval of {name}.", labels=labels
            ),
        ]

    realized = interval_families(
        "mlplatform_realized_metric",
        "Realized metric of each model version (as champion) on the rows of its newest scored day "
        "with a realized figure whose outcomes are known so far (`day`; the figure is recomputed "
        "as late outcomes arrive, and its interval narrows).",
        [*version_labels, "metric"],
    )
    coverage = interval_families(
        "mlplatform_realized_coverage",
        "Share of the rows scored on that day (as in mlplatform_realized_metric) whose outcome is "
        "known yet.",
        version_labels,
    )
    rows = GaugeMetricFamily(
        "mlplatform_realized_rows",
        "Rows behind mlplatform_realized_metric: scored that day, labelled (outcome known) and "
        "positive among the labelled.",
        labels=[*version_labels, "rows"],
    )
    backtest = GaugeMetricFamily(
        "mlplatform_backtest_metric",
        "Each model version's backtest: the metric on its test split at training, which its "
        "realized figure is held to (the realized_vs_backtest check).",
        labels=["model", "version", "metric"],
    )
    gap = GaugeMetricFamily(
        "mlplatform_realized_minus_backtest",
        "mlplatform_realized_metric minus mlplatform_backtest_metric, on the same day as the "
        "realized figure (the realized_vs_backtest check judges it with its interval).",
        labels=[*version_labels, "metric"],
    )
    estimated = interval_families(
        "mlplatform_estimated_metric",
        "Each model version's estimate from its calibrated probabilities alone (CBPE), on its "
        "newest scored day with an estimate: what the realized figure should be once the outcomes "
        "are in (it cannot see concept drift).",
        [*version_labels, "metric"],
    )
    verdict_labels = ["model", "day", "role", "version", "champion_version"]
    live = interval_families(
        "mlplatform_live_difference",
        "Live comparison on the same labelled rows of a scored day, newest day with a result per "
        "pair of versions: challenger - champion (role challenger) or champion - the version it "
        "replaced (role previous_champion).",
        [*verdict_labels, "metric"],
    )
    verdict = GaugeMetricFamily(
        "mlplatform_live_verdict",
        "1 for the action the live comparison called for on its newest day per pair of versions "
        "(promote, keep, rollback, inconclusive).",
        labels=[*verdict_labels, "action"],
    )

    def has_realized(d: ScoredDayPerformance) -> bool:
        return any(f"realized_{m}" in d.values for m in REALIZED_METRICS)

    def has_estimate(d: ScoredDayPerformance) -> bool:
        return any(f"estimated_{m}" in d.values for m in ESTIMATED_METRICS)

    def has_backtest(d: ScoredDayPerformance) -> bool:
        return any(k.startswith("backtest_") for k in d.values)

    suffixes = ("", "_low", "_high")
    for (model, version), d in sorted(_newest(days, has_realized).items()):
        labels = [model, version, d.day]
        for metric in REALIZED_METRICS:
            for family, suffix in zip(realized, suffixes, strict=True):
                if (value := d.values.get(f"realized_{metric}{suffix}")) is not None:
                    family.add_metric([*labels, metric], value)
            base = d.values.get(f"backtest_{metric}")
            if base is not None and f"realized_{metric}" in d.values:
                gap.add_metric([*labels, metric], d.values[f"realized_{metric}"] - base)
        for family, suffix in zip(coverage, suffixes, strict=True):
            if (value := d.values.get(f"realized_coverage{suffix}")) is not None:
                family.add_metric(labels, value)
        for key, name in REALIZED_ROWS.items():
            if (value := d.values.get(f"realized_{key}")) is not None:
                rows.add_metric([*labels, name], value)
    for (model, version), d in sorted(_newest(days, has_backtest).items()):
        for key, value in sorted(d.values.items()):
            if key.startswith("backtest_"):
                backtest.add_metric([model, version, key.removeprefix("backtest_")], value)
    for (model, version), d in sorted(_newest(days, has_estimate).items()):
        for metric in ESTIMATED_METRICS:
            for family, suffix in zip(estimated, suffixes, strict=True):
                if (value := d.values.get(f"estimated_{metric}{suffix}")) is not None:
                    family.add_metric([model, version, d.day, metric], value)

    # Per (model, role, version, champion version): the newest day whose comparison had a result,
    # else the newest day it was made (inconclusive: too few positives yet).
    comparisons: dict[tuple[str, str, str, str], tuple[bool, str, float, dict[str, str]]] = {}
    for d in days:
        for role, evidence in d.verdicts.items():
            key = (
                d.model,
                role,
                evidence.get("version", ""),
                evidence.get("champion_version", d.version),
            )
            rank = ("difference" in evidence, d.day, d.timestamp, evidence)
            if key not in comparisons or rank[:3] > comparisons[key][:3]:
                comparisons[key] = rank
    for (model, role, version, champion), (_, day, _, evidence) in sorted(comparisons.items()):
        labels = [model, day, role, version, champion]
        verdict.add_metric([*labels, evidence.get("action", "")], 1.0)
        for family, suffix in zip(live, suffixes, strict=True):
            if (value := _float(evidence.get(f"difference{suffix}"))) is not None:
                family.add_metric([*labels, evidence.get("metric", "")], value)

    yield from (*realized, *coverage, rows, backtest, gap, *estimated, *live, verdict)
