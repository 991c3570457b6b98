"""The packaged defaults (platform.yaml) as the core's own parameter objects, which have no
defaults of their own: tests change only the dials they are about."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache
from typing import Any

import pandas as pd

from mlplatform.config.settings import PlatformSettings, load_settings
from mlplatform.core.generator import GeneratorParams, generate_transactions


@cache
def packaged_settings() -> PlatformSettings:
    return load_settings(settings_dir=None, environ={})


def generator_params(**changes: Any) -> GeneratorParams:
    defaults = GeneratorParams(**packaged_settings().data_source.generator.model_dump())
    return dataclasses.replace(defaults, **changes)


def generated_day(day: dt.date, **changes: Any) -> pd.DataFrame:
    """One day of synthetic transactions with the packaged dials (and `changes`)."""
    return generate_transactions(day, generator_params(**changes))


def search_plan(**changes: Any):
    """The packaged search (families, folds, budget...), with `changes` to its settings."""
    return packaged_settings().training.model_copy(update=changes).search_plan()


def bootstrap_resamples() -> int:
    return packaged_settings().training.bootstrap_resamples


def threshold_metric() -> str:
    return packaged_settings().training.threshold_metric


def calibration() -> str:
    return packaged_settings().training.calibration
