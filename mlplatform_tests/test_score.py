"""Batch scoring (core.score) with a real fitted scikit-learn model."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlplatform.core.score import score_rows


class BatchRecordingModel(LogisticRegression):
    """A real logistic regression that also notes how many rows each call scored."""

    def predict_proba(self, X):
        self.batches_seen.append(len(X))
        return super().predict_proba(X)


@pytest.fixture
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 1_003
    return pd.DataFrame(
        {
            "id": [f"tx-{i}" for i in range(n)],
            "time": pd.date_range("2026-03-02", periods=n, freq="min", tz="UTC"),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
        },
        index=np.arange(n) * 3,  # not a 0..n-1 index: scores must still line up with their rows
    )


def fitted(rows: pd.DataFrame) -> BatchRecordingModel:
    model = BatchRecordingModel().fit(rows[["x1", "x2"]], (rows["x1"] + rows["x2"] > 0).astype(int))
    model.batches_seen = []
    return model


def test_rows_are_scored_in_batches_with_the_same_result_as_at_once(rows):
    model = fitted(rows)
    args = (model, rows, ["x1", "x2"], 0.5, "id", "time", "3")
    at_once = score_rows(*args, batch_rows=10_000)
    assert model.batches_seen == [1_003]
    model.batches_seen = []
    batched = score_rows(*args, batch_rows=100)
    assert model.batches_seen == [100] * 10 + [3]
    pd.testing.assert_frame_equal(batched, at_once)
    expected = model.predict_proba(rows[["x1", "x2"]])[:, 1]
    np.testing.assert_allclose(batched["score"], expected)
    assert batched["id"].tolist() == rows["id"].tolist()
    assert (batched["decision"] == (expected >= 0.5)).all()
    assert set(batched["model_version"]) == {"3"}


def test_missing_input_columns_are_named(rows):
    with pytest.raises(ValueError, match=r"\['x3'\]"):
        score_rows(fitted(rows), rows, ["x1", "x3"], 0.5, "id", "time", "1")
