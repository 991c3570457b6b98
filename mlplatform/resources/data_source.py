"""Where raw transactions come from: the seeded generator or files, one daily partition at a
time."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    import pandas as pd

    from mlplatform.core.contract import Contract


class GeneratorConfig(dg.Config):
    """The synthetic generator's dials (values come from the settings file)."""

    seed: int = Field(description="Same seed and date give the same rows.")
    rows_per_day: int = Field(gt=0)
    customers: int = Field(gt=0, description="Size of the customer population.")
    fraud_rate: float = Field(gt=0, lt=1)
    null_rate: float = Field(ge=0, le=1, description="Share of missing values injected.")
    duplicate_rate: float = Field(ge=0, le=1, description="Share of rows replayed.")
    out_of_range_rate: float = Field(ge=0, le=1, description="Share of impossible values.")
    incident: str = Field(
        "none",
        description="Inject an incident (volume_drop, stale, schema_break, bad_rows, null_spike, "
        "label_shift, label_noise, leak, drift) to see the quality gates stop a run.",
    )


class DataSource(dg.ConfigurableResource):
    """Raw transactions for one day: from the synthetic generator or from CSV/Parquet files."""

    kind: Literal["generator", "files"] = "generator"
    path: str | None = Field(
        None, description="files: a file, folder or glob; local or an fsspec URL (s3://...)"
    )
    file_format: Literal["auto", "csv", "parquet"] = "auto"
    generator: GeneratorConfig | None = None

    def describe(self) -> str:
        if self.kind == "generator":
            return f"synthetic generator (seed {self.generator.seed if self.generator else 42})"
        return f"files at {self.path}"

    def read_day(self, day: dt.date, contract: Contract) -> pd.DataFrame:
        if self.kind == "generator":
            from mlplatform.core.generator import GeneratorParams, generate_transactions

            if contract.name != "card_transactions":
                raise dg.Failure(
                    f"data_source.kind=generator produces card_transactions, but the contract is "
                    f"'{contract.name}' ({contract.source}); set data_source.kind=files",
                    allow_retries=False,
                )
            params = GeneratorParams(**self.generator.model_dump()) if self.generator else None
            return generate_transactions(day, params or GeneratorParams())
        if not self.path:
            raise dg.Failure(
                "data_source.path is required when kind is 'files'", allow_retries=False
            )
        from mlplatform.core.sources import read_source_day

        return read_source_day(self.path, contract.event_time, day, self.file_format)
