"""Batch scoring: a fitted model scores rows and flags those at or above its decision threshold."""

from __future__ import annotations

from typing import Any

import pandas as pd


def score_rows(
    model: Any,
    rows: pd.DataFrame,
    input_columns: list[str],
    threshold: float,
    id_column: str,
    event_time_column: str,
    model_version: str,
) -> pd.DataFrame:
    missing = [c for c in input_columns if c not in rows.columns]
    if missing:
        raise ValueError(f"rows to score lack the model's input columns {missing}")
    scores = model.predict_proba(rows[input_columns])[:, 1]
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
