"""Metadata the stages show in the UI."""

from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.stages import optional_work


def preview(context: Any, frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows as a table for the UI; optional work, so a failure only costs the preview."""
    with optional_work(context, "preview"):
        return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))
    return dg.MetadataValue.text("(preview unavailable: see the step's warnings)")


def column_schema(contract: Contract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=spec.type,
                description=spec.description,
                constraints=dg.TableColumnConstraints(
                    nullable=spec.nullable,
                    unique=name == contract.id,
                    other=[
                        text
                        for text in (
                            f">= {spec.min}" if spec.min is not None else None,
                            f"<= {spec.max}" if spec.max is not None else None,
                            f"one of {spec.categories}" if spec.categories else None,
                        )
                        if text
                    ],
                ),
            )
            for name, spec in contract.event_columns.items()
        ]
    )


def metric_metadata(prefix: str, metrics: dict[str, float]) -> dict[str, Any]:
    """Numbers with stable names, which the UI plots over partitions (counts stay integers)."""
    return {
        f"{prefix}{name}": dg.MetadataValue.int(value)
        if isinstance(value, int)
        else dg.MetadataValue.float(round(float(value), 6))
        for name, value in metrics.items()
    }
