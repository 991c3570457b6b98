"""`mlplatform dataset init` drafts a dataset folder from a sample; `mlplatform dataset check` runs
its contract and data gates on a sample day by day. Inference on small frames read as the pipeline
reads them (CSV as text), the written files loaded as the platform loads them, and the benchmark
datasets of the model-selection issue drafted and checked."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlplatform.cli import main
from mlplatform.core.drafting import draft_dataset
from mlplatform.core.gate_drafting import PackagedGates
from mlplatform.core.role_guessing import (
    DraftError,
    guess_event_time,
    guess_id,
    guess_positive_label,
    guess_target,
)
from mlplatform.core.type_inference import column_specs, infer_column_type, typed_frame

PACKAGED = PackagedGates(
    max_lag_minutes=120,
    lookback_partitions=14,
    min_history=3,
    min_ratio=0.5,
    max_ratio=2.0,
    null_max_rate=0.02,
    window_days=7,
    test_fraction=0.15,
    min_positives=30,
)


def text(values: list[object]) -> pd.Series:
    """A column as the CSV reader gives it: text, None for an empty field."""
    return pd.Series([None if v is None else str(v) for v in values], dtype=object)


def sample_frame(rows: int = 600, days: int = 6, seed: int = 3) -> pd.DataFrame:
    """Customers over `days` days, as a CSV writer would write them (text columns)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2016-03-01", tz="UTC")
    seconds = np.sort(rng.integers(0, days * 86400, rows))
    churned = rng.random(rows) < 0.3
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(rows)],
            "signed_up_at": [(start + pd.Timedelta(seconds=int(s))).isoformat() for s in seconds],
            "age": rng.integers(18, 80, rows),
            "balance": np.round(rng.normal(1000, 300, rows), 2),
            "plan": rng.choice(["basic", "plus", "premium"], rows),
            "autopay": rng.choice(["true", "false"], rows),
            "churned": np.where(churned, "yes", "no"),
        }
    )
    frame.loc[rng.choice(rows, rows // 20, replace=False), "balance"] = np.nan
    return frame


# Column types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "2", "-3", None], "integer"),
        (["1.5", "2", "1e3"], "float"),
        (["true", "False", "t", None], "boolean"),
        (["2016-01-01T10:00:00", "2016-01-02 11:30:00+01:00", "2016-01-03"], "datetime"),
        (["yes", "no"] * 10, "category"),  # words stay words: a target keeps `yes` as its label
        (["007", "012", "100"], "string"),  # as numbers the leading zeros would be lost
        ([f"name {i}" for i in range(40)], "string"),  # many distinct values: not a category
        ([None, None], "string"),
    ],
)
def test_column_types_from_text(values: list[object], expected: str) -> None:
    assert infer_column_type(text(values)).type == expected


def test_a_few_unreadable_values_keep_the_type_and_are_named() -> None:
    """A stray value does not turn a number column into text: its rows go to quarantine, and
    the draft says so; beyond 1% of the values the column is not that type."""
    drafted = infer_column_type(text(["1.5"] * 199 + ["abc"]))
    assert (drafted.type, drafted.unreadable) == ("float", 1)
    assert "'abc'" in drafted.note and "quarantines" in drafted.note
    assert infer_column_type(text(["1"] * 97 + ["x"] * 3)).type == "category"
    # Words for "missing": left out of the decision, and named (only an empty field is missing).
    drafted = infer_column_type(text(["NA", "3", "4", None] * 10))
    assert (drafted.type, drafted.unreadable) == ("integer", 10)
    assert "'NA'" in drafted.note and "write them empty" in drafted.note


def test_column_types_of_parquet_dtypes_are_kept() -> None:
    assert infer_column_type(pd.Series([1.0, 2.0])).type == "float"
    assert infer_column_type(pd.Series([1, 2])).type == "integer"
    assert infer_column_type(pd.Series([True, False])).type == "boolean"
    assert infer_column_type(pd.Series(pd.to_datetime(["2016-01-01"], utc=True))).type == "datetime"


def test_nullability_ranges_and_categories_describe_the_sample() -> None:
    frame = pd.DataFrame(
        {
            "age": text([30, 41, None, 18] * 5),
            "score": text([0.5, 1.25, 3.0, 2.0] * 5),
            "segment": text(["a", "b", "a", "c"] * 5),
        }
    )
    typed, types, _ = typed_frame(frame)
    specs = column_specs(typed, types)
    assert specs["age"] == {"type": "integer", "nullable": True, "min": 18, "max": 41}
    assert specs["score"] == {"type": "float", "nullable": False, "min": 0.5, "max": 3.0}
    assert specs["segment"] == {
        "type": "category",
        "nullable": False,
        "categories": ["a", "b", "c"],
    }


# Roles -----------------------------------------------------------------------------------------


def test_id_guess_prefers_an_id_name_and_lists_the_other_unique_columns() -> None:
    frame = pd.DataFrame(
        {"serial": text([5, 6, 7]), "accountID": text(["x", "y", "z"]), "n": text([1, 1, 2])}
    )
    typed, types, _ = typed_frame(frame)
    guess = guess_id(typed, types)
    assert (guess.column, guess.alternatives, guess.confirmed) == ("accountID", ("serial",), False)
    # Without an id-like name: the first unique column, saying the name does not tell.
    typed, types, _ = typed_frame(frame.drop(columns="accountID"))
    guess = guess_id(typed, types)
    assert guess.column == "serial" and "does not say id" in guess.reason
    typed, types, _ = typed_frame(pd.DataFrame({"n": text([1, 1, 2])}))
    assert guess_id(typed, types) is None


def test_event_time_guess_prefers_a_time_name_among_dates() -> None:
    frame = pd.DataFrame(
        {
            "birthday": text(["1990-01-01", "1980-05-02"]),
            "created_at": text(["2016-01-01T10:00:00", "2016-01-01T11:00:00"]),
        }
    )
    typed, types, _ = typed_frame(frame)
    guess = guess_event_time(typed, types)
    assert guess.column == "created_at" and guess.alternatives == ("birthday",)
    typed, types, _ = typed_frame(pd.DataFrame({"amount": text([1, 2])}))
    assert guess_event_time(typed, types) is None


def test_target_guess_by_name_else_the_last_two_valued_column() -> None:
    frame = pd.DataFrame(
        {
            "id": text(range(20)),
            "gender": text(["f", "m"] * 10),
            "is_weekend": text([0, 1, 0, 0] * 5),
            "Status": text(["good", "bad", "good", "good"] * 5),
        }
    )
    typed, types, _ = typed_frame(frame)
    guess = guess_target(typed, types, {"id"})
    assert guess.column == "Status" and set(guess.alternatives) == {"gender", "is_weekend"}
    # Two outcome-like names: the first, the other listed for the user to choose.
    typed, types, _ = typed_frame(frame.rename(columns={"gender": "fraud"}))
    guess = guess_target(typed, types, {"id"})
    assert guess.column == "fraud" and "Status" in guess.alternatives
    # Nothing named like a label: the last column of two values, with the others listed.
    anonymous = frame.rename(columns={"is_weekend": "flag_a", "Status": "flag_b"})
    typed, types, _ = typed_frame(anonymous)
    guess = guess_target(typed, types, {"id"})
    assert guess.column == "flag_b" and "no name says" in guess.reason
    assert guess.alternatives == ("gender", "flag_a")


def test_positive_label_guess_by_word_else_the_rarer_value() -> None:
    assert guess_positive_label(text(["no", "yes", "no"]))[0] == "yes"
    assert guess_positive_label(pd.Series([0, 1, 1, 1]))[0] == 1
    label, note = guess_positive_label(text(["good", "good", "poor"]))
    assert label == "poor" and "rarer" in note and note.startswith("CONFIRM")


def test_draft_takes_the_roles_given_and_refuses_impossible_ones() -> None:
    frame = sample_frame().assign(churn_flag=lambda f: (f["churned"] == "yes").astype(int))
    draft = draft_dataset(
        frame,
        "customers",
        PACKAGED,
        target="churn_flag",
        positive_label="1",
    )
    assert draft.target.confirmed and draft.target.column == "churn_flag"
    assert draft.positive_label == 1 and isinstance(draft.positive_label, int)
    assert draft.contract["columns"]["customer_id"] == {
        "type": "string",
        "nullable": False,
        "feature": False,
    }
    with pytest.raises(DraftError, match=r"--positive-label '2' is not a value of the target"):
        draft_dataset(frame, "customers", PACKAGED, target="churn_flag", positive_label="2")
    with pytest.raises(DraftError, match="--target nope: no such column"):
        draft_dataset(frame, "customers", PACKAGED, target="nope")
    with pytest.raises(DraftError, match="cannot be both the id and the target"):
        draft_dataset(frame, "customers", PACKAGED, target="customer_id", positive_label="C000001")


def test_a_sample_without_dates_is_refused_saying_the_platform_needs_an_event_time() -> None:
    frame = sample_frame().drop(columns="signed_up_at")
    with pytest.raises(DraftError, match="no column parses as dates.*the platform needs one"):
        draft_dataset(frame, "customers", PACKAGED)


def test_gate_bands_come_from_the_sample() -> None:
    frame = sample_frame(rows=3000)
    draft = draft_dataset(frame, "customers", PACKAGED)
    band = draft.gates["validated_transactions"]["label_rate"]
    # Every day of the sample lies inside; 500 rows a day at 30% leave about +/- 0.08.
    by_day = (frame["churned"] == "yes").groupby(frame["signed_up_at"].str[:10]).mean()
    assert band["min_rate"] <= by_day.min() and by_day.max() <= band["max_rate"]
    assert band["min_rate"] > 0.2 and band["max_rate"] < 0.4
    # 5% of balances are missing: the packaged 2% null-rate limit would warn every day.
    assert draft.gates["validated_transactions"]["null_rate"]["max_rate"] > 0.05
    assert draft.gates["trained_model"]["roc_auc"] == {"min": 0.6}
    assert draft.gates["trained_model"]["accuracy"]["severity"] == "WARN"
    assert draft.settings["partitions"] == {"start_date": "2016-03-01", "timezone": "UTC"}


def labelled_days(rates: list[float], rows_per_day: int = 200, seed: int = 5):
    """Rows over consecutive days from 2016-03-01 (UTC) at random times, each day's positives
    at its own rate: (event times, positive flags)."""
    rng = np.random.default_rng(seed)
    times, flags = [], []
    for day, rate in enumerate(rates):
        start = pd.Timestamp("2016-03-01", tz="UTC") + pd.Timedelta(days=day)
        seconds = np.sort(rng.integers(0, 86400, rows_per_day))
        times.append(start + pd.to_timedelta(seconds, "s"))
        positives = np.zeros(rows_per_day, dtype=bool)
        positives[rng.choice(rows_per_day, round(rate * rows_per_day), replace=False)] = True
        flags.append(positives)
    return pd.Series(np.concatenate(times)), pd.Series(np.concatenate(flags))


def test_test_split_positives_are_counted_as_the_features_split_the_window() -> None:
    from mlplatform.core.features import time_split
    from mlplatform.core.gate_drafting import PositivesInTestSplit

    times, flags = labelled_days([0.05, 0.2, 0.1, 0.02, 0.3, 0.08, 0.15, 0.04, 0.1, 0.12])
    # Rows sharing a time land in one split: some ties at the boundaries.
    times = times.dt.floor("10min")
    days = times.dt.date
    counter = PositivesInTestSplit(times, flags, "UTC", test_fraction=0.15)
    for window in (1, 3, 7):
        counted = counter.by_end(window, sorted(set(days)))
        assert sorted(counted) == sorted(set(days))[window - 1 :]
        for end, positives in counted.items():
            start = end - pd.Timedelta(days=window - 1)
            rows = (days >= start) & (days <= end)
            split = time_split(times[rows], validation_fraction=0.15, test_fraction=0.15)
            assert positives == int(flags[rows][split == "test"].sum()), (window, end)


def test_the_window_holds_enough_test_positives_in_every_window_of_the_sample() -> None:
    """Labels that cluster in time: the mean rate (about 32 test positives a week) says a 7-day
    window is enough, but a window ending on the lean day holds far fewer. The drafted window is
    the shortest whose every window in the sample holds the 30 the model gates need."""
    from mlplatform.core.gate_drafting import (
        PositivesInTestSplit,
        WindowChoice,
        window_for_model_gates,
    )

    rates = [0.35] * 6 + [0.03] + [0.35] * 7
    times, flags = labelled_days(rates, rows_per_day=100)
    ends = sorted(set(times.dt.date))
    counter = PositivesInTestSplit(times, flags, "UTC", PACKAGED.test_fraction)
    assert flags.mean() * PACKAGED.test_fraction * 100 * 7 > 30  # the mean's promise
    assert min(counter.by_end(7, ends).values()) < PACKAGED.min_positives
    choice = window_for_model_gates(times, flags, "UTC", ends, PACKAGED)
    assert min(counter.by_end(choice.days, ends).values()) >= PACKAGED.min_positives
    assert min(counter.by_end(choice.days - 1, ends).values()) < PACKAGED.min_positives
    assert f"every {choice.days}-day window holds at least" in choice.note
    # Enough in every week: the packaged window stays, with nothing to say.
    times, flags = labelled_days([0.3] * 14, rows_per_day=100)
    assert window_for_model_gates(times, flags, "UTC", ends, PACKAGED) == WindowChoice(7, "")


def test_a_sample_too_short_or_too_lean_for_the_model_gates_gets_an_estimate_saying_so() -> None:
    from mlplatform.core.gate_drafting import window_for_model_gates

    # 5 days, 200 rows a day at 2%: 0.6 test positives a day; 30 plus a margin for chance.
    times, flags = labelled_days([0.02] * 5)
    ends = sorted(set(times.dt.date))
    choice = window_for_model_gates(times, flags, "UTC", ends, PACKAGED)
    assert choice.days == 69  # ceil((30 + 2 * sqrt(30)) / 0.6)
    assert "holds no whole window that long" in choice.note
    assert "warn that they cannot judge" in choice.note
    # 10 days at 1%: even the whole sample holds too few; the estimate, at least the sample.
    times, flags = labelled_days([0.01] * 10)
    choice = window_for_model_gates(times, flags, "UTC", sorted(set(times.dt.date)), PACKAGED)
    assert (
        choice.days == 137 and "even a 10-day window of the sample holds as few as" in choice.note
    )
    # Rarer still: never more than a year, saying how many that year would give.
    times, flags = labelled_days([0.01, 0.0] * 5, rows_per_day=100)  # 0.075 test positives a day
    choice = window_for_model_gates(times, flags, "UTC", sorted(set(times.dt.date)), PACKAGED)
    assert choice.days == 366 and "366 days are expected to give 27" in choice.note


def test_drafted_settings_carry_the_window_and_why() -> None:
    frame = sample_frame(rows=1400, days=14)
    frame["churned"] = np.where(np.arange(1400) % 5 == 0, "yes", "no")  # 3 test positives a day
    draft = draft_dataset(frame, "customers", PACKAGED)
    window = draft.settings["features"]["window_days"]
    assert window > PACKAGED.window_days
    assert f"every {window}-day window holds at least" in draft.facts["window_note"]


# The command -----------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_init_writes_a_folder_the_platform_loads(tmp_path: Path, capsys) -> None:
    from mlplatform.config.dataset import DATASET_ENV
    from mlplatform.config.gates import load_quality_gates
    from mlplatform.config.settings import load_settings
    from mlplatform.core.contract import load_contract
    from mlplatform.core.yaml_files import parse_yaml

    sample = write_csv(sample_frame(), tmp_path / "customers.csv")
    folder = tmp_path / "customers"
    assert main(["dataset", "init", str(sample), str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "contract.yaml",
        "quality_gates.yaml",
        "settings.yaml",
    ]
    for path in folder.iterdir():
        assert isinstance(parse_yaml(path.read_text()), dict)
    written = (folder / "contract.yaml").read_text()
    for line in ("id: customer_id  # CONFIRM", "event_time: signed_up_at  # CONFIRM"):
        assert line in written
    assert "target: churned  # CONFIRM" in written
    contract = load_contract(folder / "contract.yaml")
    assert (contract.id, contract.event_time, contract.target) == (
        "customer_id",
        "signed_up_at",
        "churned",
    )
    assert contract.positive_label == "yes"
    assert contract.columns["plan"].categories == ["basic", "plus", "premium"]
    assert contract.columns["autopay"].type == "boolean"
    assert contract.columns["balance"].nullable and not contract.columns["age"].nullable
    gates = load_quality_gates(dataset=folder)
    assert gates.trained_model.roc_auc.min == 0.6
    settings = load_settings(environ={**os.environ, DATASET_ENV: str(folder)}, root=tmp_path)
    assert str(settings.partitions.start_date) == "2016-03-01"
    assert settings.data_source.kind == "files"
    assert settings.data_source.path == str(sample.resolve())
    assert "CONFIRM" in capsys.readouterr().out


def test_init_reads_parquet(tmp_path: Path) -> None:
    from mlplatform.core.contract import load_contract

    frame = sample_frame()
    frame["signed_up_at"] = pd.to_datetime(frame["signed_up_at"])
    frame["age"] = frame["age"].astype(int)
    frame.to_parquet(tmp_path / "customers.parquet")
    folder = tmp_path / "folder"
    assert main(["dataset", "init", str(tmp_path / "customers.parquet"), str(folder)]) == 0
    contract = load_contract(folder / "contract.yaml")
    assert contract.event_time == "signed_up_at"
    assert contract.columns["signed_up_at"].type == "datetime"
    assert contract.columns["balance"].type == "float"
    assert main(["dataset", "check", str(folder), str(tmp_path / "customers.parquet")]) == 0


def test_init_refuses_a_folder_that_holds_files(tmp_path: Path, capsys) -> None:
    sample = write_csv(sample_frame(), tmp_path / "customers.csv")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "contract.yaml").write_text("mine: true\n")
    assert main(["dataset", "init", str(sample), str(folder)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert (folder / "contract.yaml").read_text() == "mine: true\n"
    assert main(["dataset", "init", str(sample), str(folder), "--force"]) == 0
    assert "customer_id" in (folder / "contract.yaml").read_text()


def test_init_without_an_event_time_says_so(tmp_path: Path, capsys) -> None:
    sample = write_csv(sample_frame().drop(columns="signed_up_at"), tmp_path / "s.csv")
    assert main(["dataset", "init", str(sample), str(tmp_path / "folder")]) == 1
    assert "the platform needs one" in capsys.readouterr().err
    assert not (tmp_path / "folder").exists()


def test_check_passes_on_the_sample_and_reports_bad_rows_with_reasons(
    tmp_path: Path, capsys
) -> None:
    frame = sample_frame()
    sample = write_csv(frame, tmp_path / "customers.csv")
    folder = tmp_path / "customers"
    assert main(["dataset", "init", str(sample), str(folder)]) == 0
    capsys.readouterr()
    assert main(["dataset", "check", str(folder), str(sample)]) == 0
    out = capsys.readouterr().out
    assert "every blocking data gate passes on every day" in out
    assert "600 rows: 600 validated, 0 quarantined" in out
    assert "passed validated_transactions" not in out
    assert main(["dataset", "check", str(folder), str(sample), "--verbose"]) == 0
    assert out.count("\n2016-03-0") == capsys.readouterr().out.count(
        "passed validated_transactions.label_rate"
    )

    # Bad rows on the third day: more than the 5% quarantine rate allows.
    bad = frame.copy().astype(object)
    third_day = bad.index[bad["signed_up_at"].str.startswith("2016-03-03")]
    rows = third_day[:12]
    bad.loc[rows[:4], "age"] = 150
    bad.loc[rows[4:8], "plan"] = "platinum"
    bad.loc[rows[8:10], "balance"] = "n/a"
    bad.loc[rows[10], "customer_id"] = bad.loc[rows[0], "customer_id"]
    bad.loc[rows[11], "signed_up_at"] = "2010-01-01T00:00:00"
    write_csv(bad, tmp_path / "bad.csv")
    assert main(["dataset", "check", str(folder), str(tmp_path / "bad.csv")]) == 1
    out = capsys.readouterr().out
    assert "quarantined 4: age: outside [18.0, 79.0]" in out
    assert "quarantined 4: plan: not an allowed category" in out
    assert "quarantined 2: balance: not a valid float" in out
    assert "quarantined 1: customer_id: duplicate id" in out
    # A row dated before the first partition goes to quarantine with the first day.
    assert "signed_up_at: outside every partition: before the first partition" in out
    day_line = next(line for line in out.splitlines() if line.startswith("2016-03-03"))
    assert "FAILED: validated_transactions.quarantine_rate" in day_line
    assert (
        "blocking gates failed on 1 of 6 days: validated_transactions.quarantine_rate (1 day)"
        in out
    )


def test_check_of_a_file_with_no_row_in_any_partition_quarantines_it_on_the_first_day(
    tmp_path: Path, capsys
) -> None:
    """As ingestion does: the first partition's run carries the rows to quarantine; its empty
    day warns without blocking, and the carried rows are not that day's own rejects."""
    frame = sample_frame()
    sample = write_csv(frame, tmp_path / "customers.csv")
    folder = tmp_path / "customers"
    assert main(["dataset", "init", str(sample), str(folder)]) == 0
    early = frame.head(40).copy()
    early["signed_up_at"] = "2015-06-01T12:00:00+00:00"
    write_csv(early, tmp_path / "early.csv")
    capsys.readouterr()
    assert main(["dataset", "check", str(folder), str(tmp_path / "early.csv"), "--verbose"]) == 0
    out = capsys.readouterr().out
    day_line = next(line for line in out.splitlines() if line.startswith("2016-03-01"))
    assert day_line.split() == ["2016-03-01", "40", "0", "40", "pass"]
    assert "quarantined 40: signed_up_at: outside every partition: before the first partition" in (
        out
    )
    assert "inconclusive raw_transactions.not_empty" in out
    assert "passed validated_transactions.quarantine_rate: quarantine rate 0.0000" in out


def test_missing_values_written_as_na_are_named_by_init_and_quarantined_by_check(
    tmp_path: Path, capsys
) -> None:
    frame = sample_frame().astype(object)
    frame.loc[frame["balance"].isna(), "balance"] = "NA"  # as R writes a missing value
    sample = write_csv(frame, tmp_path / "customers.csv")
    folder = tmp_path / "customers"
    assert main(["dataset", "init", str(sample), str(folder)]) == 0
    assert "warning: balance: 30 value(s) written 'NA' for missing" in capsys.readouterr().out
    assert "balance: {type: float, nullable: false" in (folder / "contract.yaml").read_text()
    assert main(["dataset", "check", str(folder), str(sample)]) == 1
    out = capsys.readouterr().out
    assert "quarantined 30: balance: not a valid float" in out


def test_event_times_with_an_offset_ask_for_the_time_zone(tmp_path: Path, capsys) -> None:
    frame = sample_frame()
    times = pd.to_datetime(frame["signed_up_at"])
    # Nothing between 23:00 and midnight UTC: the last local day is not cut short.
    frame = frame.loc[times.dt.hour < 23].assign(
        signed_up_at=times.dt.tz_convert("Europe/Paris").astype(str)
    )
    sample = write_csv(frame, tmp_path / "customers.csv")
    assert main(["dataset", "init", str(sample), str(tmp_path / "utc")]) == 0
    assert "carry a UTC offset (+01:00)" in capsys.readouterr().out
    assert "+01:00" in (tmp_path / "utc" / "settings.yaml").read_text()
    folder = tmp_path / "paris"
    assert main(["dataset", "init", str(sample), str(folder), "--timezone", "Europe/Paris"]) == 0
    assert "UTC offset" not in capsys.readouterr().out
    assert "timezone: Europe/Paris" in (folder / "settings.yaml").read_text()
    assert main(["dataset", "check", str(folder), str(sample)]) == 0


def test_a_last_day_cut_short_stays_out_of_the_bands_and_check_flags_it(
    tmp_path: Path, capsys
) -> None:
    """An export that ends at 2 a.m.: covering that day would stretch the volume band to nothing."""
    frame = sample_frame()
    late = sample_frame(rows=5, seed=9).assign(
        customer_id=[f"L{i}" for i in range(5)],
        signed_up_at=[f"2016-03-07T01:0{i}:00+00:00" for i in range(5)],
    )
    sample = write_csv(pd.concat([frame, late]), tmp_path / "customers.csv")
    folder = tmp_path / "customers"
    assert main(["dataset", "init", str(sample), str(folder)]) == 0
    assert "last day (2016-03-07, 5 rows)" in capsys.readouterr().out
    gates = (folder / "quality_gates.yaml").read_text()
    assert "volume_in_band: {min_ratio: 0.5, max_ratio: 2.0}" in gates
    assert main(["dataset", "check", str(folder), str(sample)]) == 1
    out = capsys.readouterr().out
    day_line = next(line for line in out.splitlines() if line.startswith("2016-03-07"))
    assert "FAILED: raw_transactions.volume_in_band" in day_line
    assert "blocking gates failed on 1 of 7 days" in out


def test_check_names_the_file_and_key_of_a_bad_folder(tmp_path: Path, capsys) -> None:
    sample = write_csv(sample_frame(), tmp_path / "customers.csv")
    folder = tmp_path / "customers"
    assert main(["dataset", "init", str(sample), str(folder)]) == 0
    gates = folder / "quality_gates.yaml"
    gates.write_text(gates.read_text().replace("label_rate:", "label_rat:"))
    capsys.readouterr()
    assert main(["dataset", "check", str(folder), str(sample)]) == 2
    err = capsys.readouterr().err
    assert "quality_gates.yaml" in err and "label_rat" in err
    gates.write_text(gates.read_text().replace("label_rat:", "label_rate:"))
    (folder / "quality_gate.yaml").write_text("{}\n")
    assert main(["dataset", "check", str(folder), str(sample)]) == 2
    assert "quality_gate.yaml" in capsys.readouterr().err


def test_freshness_reads_text_event_times_of_mixed_precision(card_contract) -> None:
    """CSV text such as `00:00:00+00:00` then `23:59:30.5+00:00`: the newest event is the last."""
    from mlplatform.config.gates import load_quality_gates
    from mlplatform.core.data_gates import raw_transactions_gates

    raw = pd.DataFrame({name: [None, None] for name in card_contract.columns})
    raw[card_contract.event_time] = ["2016-01-01 00:00:00+00:00", "2016-01-01 23:59:30.5+00:00"]
    gates = load_quality_gates().raw_transactions
    outcome = raw_transactions_gates(
        raw, card_contract, gates, pd.Timestamp("2016-01-02", tz="UTC"), {}
    )["fresh"]
    assert outcome.passed and outcome.observed == 0.5


# The benchmark datasets of the model-selection issue ---------------------------------------------


@pytest.mark.parametrize(
    "item", ["credit_data", "mlc_churn", "wa_churn", "Default", "Caravan", "HMDA"]
)
def test_benchmark_datasets_draft_into_folders_check_accepts(tmp_path: Path, item: str) -> None:
    """Each dataset with the benchmark's id and event time, as a CSV; the roles confirmed on the
    command line as a user would after reading the draft."""
    from mlplatform.core.contract import load_contract
    from mlplatform_tests.benchmarks.quality import (
        DATASETS,
        ID_COLUMN,
        TIME_COLUMN,
        load_frame,
    )

    dataset = next(d for d in DATASETS if d.item == item)
    frame, _ = load_frame(dataset)
    sample = write_csv(frame, tmp_path / f"{item}.csv")
    folder = tmp_path / item
    confirmed = ["--id", ID_COLUMN, "--event-time", TIME_COLUMN, "--target", dataset.target]
    confirmed += ["--positive-label", dataset.positive_label]
    assert main(["dataset", "init", str(sample), str(folder), *confirmed]) == 0
    assert main(["dataset", "check", str(folder), str(sample)]) == 0
    # The guesses alone find the same roles and label.
    assert main(["dataset", "init", str(sample), str(tmp_path / "guessed")]) == 0
    guessed = load_contract(tmp_path / "guessed" / "contract.yaml")
    assert (guessed.id, guessed.event_time, guessed.target, guessed.positive_label) == (
        ID_COLUMN,
        TIME_COLUMN,
        dataset.target,
        dataset.positive_label,
    )
