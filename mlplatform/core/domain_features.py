"""Domain features a contract can ask for by name (`domain_features:`), and the roles each needs
the contract to name columns for (`roles:` entity, amount, device). Each is a function of the row
and of earlier rows of the same entity in the window, never of later ones.

The contract checks the names and roles it is given against this table; features.py computes
them.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DomainFeature:
    roles: tuple[str, ...]
    compute: Callable[[pd.DataFrame, dict[str, str], str], pd.Series]
    description: str


def _hour_of_day(frame: pd.DataFrame, roles: dict[str, str], event_time: str) -> pd.Series:
    return frame[event_time].dt.hour.astype("float64")


def _customer_amount_ratio(
    frame: pd.DataFrame, roles: dict[str, str], event_time: str
) -> pd.Series:
    amount = frame[roles["amount"]].astype("float64")
    groups = amount.groupby(frame[roles["entity"]], observed=True, sort=False)
    previous_total = groups.cumsum() - amount
    previous_count = groups.cumcount()
    previous_mean = previous_total / previous_count.replace(0, np.nan)
    return amount / previous_mean


def _customer_velocity_1h(frame: pd.DataFrame, roles: dict[str, str], event_time: str) -> pd.Series:
    """How many transactions the same entity made in the hour before this one."""
    entity_codes = pd.factorize(frame[roles["entity"]])[0].astype(np.int64)
    seconds = frame[event_time].astype("int64") // 10**9
    seconds = seconds - seconds.min()
    # One sorted key per (entity, time): a search on it counts an entity's events in any interval.
    key = entity_codes * np.int64(10**10) + seconds.to_numpy()
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    earlier = np.searchsorted(sorted_key, sorted_key - 3600, side="left")
    counts = np.empty(len(key), dtype="float64")
    counts[order] = np.arange(len(key)) - earlier
    return pd.Series(counts, index=frame.index)


def _new_device(frame: pd.DataFrame, roles: dict[str, str], event_time: str) -> pd.Series:
    """1 when the entity has not used this device before in the window (missing device: unknown)."""
    device = frame[roles["device"]]
    seen_before = (
        frame.groupby([roles["entity"], roles["device"]], observed=True, sort=False).cumcount() > 0
    )
    return pd.Series(
        np.where(device.isna(), np.nan, (~seen_before).astype("float64")), index=frame.index
    )


DOMAIN_FEATURES: dict[str, DomainFeature] = {
    "hour_of_day": DomainFeature((), _hour_of_day, "hour of the event time (UTC)"),
    "customer_amount_ratio": DomainFeature(
        ("entity", "amount"),
        _customer_amount_ratio,
        "amount over the entity's mean amount in earlier transactions of the window",
    ),
    "customer_velocity_1h": DomainFeature(
        ("entity",), _customer_velocity_1h, "the entity's transactions in the previous hour"
    ),
    "new_device": DomainFeature(
        ("entity", "device"), _new_device, "first use of this device by the entity in the window"
    ),
}
