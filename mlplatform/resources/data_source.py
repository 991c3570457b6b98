"""Where raw transactions come from: the seeded generator or files, one daily partition at a
time.

Where the files are (`path`, `outcomes_path`) is `Locked` (resources/locked.py): from the settings,
never from run config. Which source, the files' format and the generator's dials stay run config."""

import datetime as dt
from typing import TYPE_CHECKING

import dagster as dg

from mlplatform.config.active import SETTINGS
from mlplatform.config.launchpad import launchpad_config
from mlplatform.config.settings import FileFormat, SourceKind
from mlplatform.resources.locked import Locked

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from mlplatform.core.contract import Contract
    from mlplatform.core.sources import PartitionSpan


# The generator's dials, typed and bounded by the settings model, their defaults from the settings
# file: a run can change one (say `incident`) in the Launchpad without restating the others.
GeneratorConfig = launchpad_config("GeneratorConfig", SETTINGS.data_source.generator)
_source = SETTINGS.data_source


class DataSource(dg.ConfigurableResource):
    """Raw transactions for one day: from the synthetic generator or from CSV/Parquet files."""

    # Defaults are the settings in effect (the Launchpad shows them), types are the settings'.
    kind: SourceKind = _source.kind
    path: Locked[str | None] = _source.path
    file_format: FileFormat = _source.file_format
    csv_max_field_chars: int = _source.csv_max_field_chars
    generator: GeneratorConfig | None = None
    outcomes_path: Locked[str | None] = SETTINGS.outcomes.path
    outcomes_file_format: FileFormat = SETTINGS.outcomes.file_format

    def describe(self) -> str:
        if self.kind == "generator":
            return f"synthetic generator (seed {(self.generator or GeneratorConfig()).seed})"
        return f"files at {self.path}"

    def read_day(
        self,
        day: dt.date,
        contract: "Contract",
        span: "PartitionSpan",
        log: "Callable[[str], None]" = lambda message: None,
    ) -> "pd.DataFrame":
        """The day's rows; from files, also their rows that fall in no partition of `span`
        (carried by the file's first day, see read_source_day)."""
        if self.kind == "generator":
            from mlplatform.core.generator import GeneratorParams, generate_transactions

            if contract.name != "card_transactions":
                raise dg.Failure(
                    f"data_source.kind=generator produces card_transactions, but the contract is "
                    f"'{contract.name}' ({contract.source}); set data_source.kind=files",
                    allow_retries=False,
                )
            dials = self.generator or GeneratorConfig()
            return generate_transactions(day, GeneratorParams(**dials.model_dump()))
        if not self.path:
            raise dg.Failure(
                "data_source.path is required when kind is 'files'", allow_retries=False
            )
        from mlplatform.core.sources import read_source_day

        return read_source_day(
            self.path,
            contract,
            day,
            span,
            self.file_format,
            log=log,
            max_field_chars=self.csv_max_field_chars,
        )

    def describe_outcomes(self) -> str:
        if self.kind == "generator":
            seed = (self.generator or GeneratorConfig()).seed
            return f"synthetic generator's outcomes (seed {seed})"
        if not self.outcomes_path:
            return "no outcome files (outcomes.path is not set)"
        return f"outcome files at {self.outcomes_path}"

    def read_outcomes(
        self,
        day: dt.date,
        contract: "Contract",
        span: "PartitionSpan",
        log: "Callable[[str], None]" = lambda message: None,
    ) -> "pd.DataFrame":
        """The outcome records that became known on `day`: the generator's own (for its
        events), or every record of the outcome files whose `known_at` falls on the day; from
        files, also the records that fall in no partition (carried by the first file day, marked
        with their reason, see read_source_day), each naming its file and record number."""
        if self.kind == "generator":
            from mlplatform.core.generator import GeneratorParams, generate_outcomes

            dials = self.generator or GeneratorConfig()
            return generate_outcomes(day, GeneratorParams(**dials.model_dump()))
        if not self.outcomes_path:
            # No outcome files configured (yet): no outcome is known, and the day's events go on
            # being ingested and scored. The outcomes asset says so in a warning every day.
            import pandas as pd

            return pd.DataFrame(
                {name: pd.Series(dtype=object) for name in contract.outcome_records().columns}
            )
        from mlplatform.core.sources import read_source_day

        return read_source_day(
            self.outcomes_path,
            contract.outcome_records(),
            day,
            span,
            self.outcomes_file_format,
            log=log,
            allow_empty=True,
            with_origin=True,
            max_field_chars=self.csv_max_field_chars,
        )
