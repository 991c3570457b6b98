"""Batch scoring: a fitted model scores rows and flags those at or above its decision threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def score_rows(
    model: Any,
    rows: pd.DataFrame,
    input_columns: list[str],
    threshold: float,
    id_column: str,
    event_time_column: str,
    model_version: str,
    batch_rows: int = 250_000,
) -> pd.DataFrame:
    """Every row's score and decision. Rows are scored `batch_rows` at a time, so the model's
    transformed copy of its inputs never holds more than one batch (at 10M rows, the whole input
    as float64 would be gigabytes)."""
    missing = [c for c in input_columns if c not in rows.columns]
    if missing:
        raise ValueError(f"rows to score lack the model's input columns {missing}")
    scores = np.empty(len(rows), dtype="float64")
    for start in range(0, len(rows), batch_rows):
        batch = rows.iloc[start : start + batch_rows][input_columns]
        scores[start : start + len(batch)] = model.predict_proba(batch)[:, 1]
    return pd.DataFrame(
        {
            id_column: rows[id_column].reset_index(drop=True),
            # The column itself (not .to_numpy(), which turns zoned times into Python objects).
            event_time_column: rows[event_time_column].reset_index(drop=True),
            "score": scores,
            "decision": scores >= threshold,
            "model_version": model_version,
        }
    )
