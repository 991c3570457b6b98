"""Where raw transactions come from: the seeded generator or files, one daily partition at a
time."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from mlplatform.config.active import SETTINGS

if TYPE_CHECKING:
    import pandas as pd

    from mlplatform.core.contract import Contract


_defaults = SETTINGS.data_source.generator


class GeneratorConfig(dg.Config):
    """The synthetic generator's dials; defaults from the settings file, so a run can change one
    (say `incident`) in the Launchpad without restating the others."""

    seed: int = Field(_defaults.seed, description="Same seed and date give the same rows.")
    rows_per_day: int = Field(_defaults.rows_per_day, gt=0)
    customers: int = Field(
        _defaults.customers, gt=0, description="Size of the customer population."
    )
    fraud_rate: float = Field(_defaults.fraud_rate, gt=0, lt=1)
    null_rate: float = Field(
        _defaults.null_rate, ge=0, le=1, description="Missing values injected."
    )
    duplicate_rate: float = Field(
        _defaults.duplicate_rate, ge=0, le=1, description="Rows replayed."
    )
    out_of_range_rate: float = Field(
        _defaults.out_of_range_rate, ge=0, le=1, description="Share of impossible values."
    )
    incident: str = Field(
        _defaults.incident,
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
