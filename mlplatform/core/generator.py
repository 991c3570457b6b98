"""Seeded synthetic card transactions, one calendar day at a time.

Customers (home country, usual spend, usual devices) depend on the seed only, so their behaviour is
consistent across days; the transactions of a day depend on the seed and the date, so the same seed
and date always give the same rows. Fraud is driven by learnable, noisy patterns (unusual amount for
the customer, new device, foreign country, night-time, risky merchant categories, bursts of several
transactions on a compromised card), and a few realistic defects are injected for validation to
find.

Two dials serve monitoring after deployment:
- late outcomes: `generate_outcomes` gives the outcome records (id, is_fraud, known_at) that become
  known on a day, each event's outcome arriving a seeded number of days after it (`OutcomeDelay`);
  with `events_carry_labels` off, the events themselves come without `is_fraud`;
- a concept-drift incident: from `concept_drift_from` on, fraud follows another combination of the
  same inputs (`_drifted_fraud`), while every input column is drawn exactly as without drift.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

MERCHANT_CATEGORIES = np.array(
    [
        "grocery", "restaurants", "fuel", "travel", "electronics", "jewelry", "gift_cards",
        "apparel", "health", "entertainment", "utilities", "online_marketplace",
    ]
)  # fmt: skip
CATEGORY_WEIGHTS = np.array([22, 16, 10, 4, 5, 1.5, 1.5, 9, 6, 7, 5, 13], dtype=float)
CATEGORY_AMOUNT_SCALE = np.array([0.8, 0.9, 0.9, 4.0, 3.0, 5.0, 1.5, 1.4, 1.0, 1.1, 1.6, 1.2])
RISKY_CATEGORIES = np.isin(MERCHANT_CATEGORIES, ["electronics", "jewelry", "gift_cards"])
COUNTRIES = np.array(
    ["US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "BR", "MX", "IN", "NG", "CN", "RU", "AU"]
)
HOME_COUNTRY_WEIGHTS = np.array([40, 10, 9, 8, 5, 5, 3, 6, 4, 3, 3, 1, 1, 1, 1], dtype=float)
CHANNELS = np.array(["pos", "online", "atm"])


@dataclass(frozen=True)
class GeneratorParams:
    """The generator's dials; their bounds and defaults are the settings' (platform.yaml)."""

    seed: int
    rows_per_day: int
    customers: int
    fraud_rate: float
    null_rate: float
    duplicate_rate: float
    out_of_range_rate: float
    # A deliberate incident, to see the quality gates stop a run (see INCIDENTS).
    incident: str
    # False: the events come without the target column; their outcomes arrive on their own
    # (generate_outcomes), days later.
    events_carry_labels: bool = True
    # From this day on, fraud follows another link to the same inputs (a concept-drift
    # incident); the inputs of every day are the same as without it. None: no drift. ISO text
    # (as in the settings: run config has no date type) is read as its day.
    concept_drift_from: dt.date | str | None = None
    # How late each event's outcome becomes known (see OutcomeDelay, and `outcome_delay`).
    outcome_delay_min_days: int = 1
    outcome_delay_max_days: int = 14
    outcome_delay_shape: str = "uniform"
    outcome_delay_mean_days: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.concept_drift_from, str):
            day: dt.date = dt.date.fromisoformat(self.concept_drift_from)
            object.__setattr__(self, "concept_drift_from", day)

    @property
    def outcome_delay(self) -> OutcomeDelay:
        return OutcomeDelay(
            min_days=self.outcome_delay_min_days,
            max_days=self.outcome_delay_max_days,
            shape=self.outcome_delay_shape,  # type: ignore[arg-type]
            mean_days=self.outcome_delay_mean_days,
        )


@dataclass(frozen=True)
class OutcomeDelay:
    """How many whole days after its event an outcome becomes known, between `min_days` and
    `max_days` (inclusive): every whole number of days equally likely (`uniform`), or fewer days
    more likely (`geometric`: a geometric distribution of mean `mean_days` before it is cut at
    `max_days`; the cut leaves the mean a little lower)."""

    min_days: int = 1
    max_days: int = 14
    shape: Literal["uniform", "geometric"] = "uniform"
    mean_days: float | None = None  # geometric only

    def __post_init__(self) -> None:
        if not 0 <= self.min_days <= self.max_days:
            raise ValueError(
                f"outcome delay: need 0 <= min_days <= max_days, got {self.min_days}, "
                f"{self.max_days}"
            )
        if self.shape not in ("uniform", "geometric"):
            raise ValueError(f"outcome delay: unknown shape '{self.shape}' (uniform, geometric)")
        if self.shape == "geometric" and (
            self.mean_days is None or not self.min_days < self.mean_days <= self.max_days
        ):
            raise ValueError(
                f"outcome delay: a geometric delay needs min_days < mean_days <= max_days, got "
                f"mean_days={self.mean_days} with min_days={self.min_days}, "
                f"max_days={self.max_days}"
            )
        if self.shape == "uniform" and self.mean_days is not None:
            raise ValueError("outcome delay: mean_days applies to the geometric shape only")

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` delays in whole days."""
        if self.shape == "uniform":
            return rng.integers(self.min_days, self.max_days + 1, size)
        # A geometric number of days past min_days, success probability p (mean (1-p)/p), cut at
        # max_days by inverting its distribution function on [0, max_days - min_days].
        p = 1.0 / (float(self.mean_days) - self.min_days + 1.0)  # type: ignore[arg-type]
        q = 1.0 - p
        values = self.max_days - self.min_days + 1
        u = rng.random(size)
        extra = np.floor(np.log1p(-u * (1.0 - q**values)) / np.log(q)).astype(np.int64)
        return self.min_days + np.clip(extra, 0, values - 1)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, (seed, *parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class _Customers:
    home_country: np.ndarray
    typical_amount: np.ndarray
    devices_per_customer: np.ndarray
    activity: np.ndarray


def _customers(params: GeneratorParams) -> _Customers:
    rng = _rng(params.seed, "customers")
    n = params.customers
    activity = rng.pareto(2.5, n) + 0.2
    return _Customers(
        home_country=rng.choice(
            len(COUNTRIES), n, p=HOME_COUNTRY_WEIGHTS / HOME_COUNTRY_WEIGHTS.sum()
        ),
        typical_amount=np.exp(rng.normal(3.6, 0.6, n)),
        devices_per_customer=rng.integers(1, 4, n),
        activity=activity / activity.sum(),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate_intercept(score: np.ndarray, target_rate: float) -> float:
    """The intercept that makes the mean fraud probability equal the target rate."""
    low, high = -30.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if _sigmoid(score + middle).mean() > target_rate:
            high = middle
        else:
            low = middle
    return (low + high) / 2


def generate_transactions(day: dt.date, params: GeneratorParams) -> pd.DataFrame:
    """All transactions whose event time falls on `day` (UTC), deterministic in (seed, day)."""
    customers = _customers(params)
    rng = _rng(params.seed, "day", day.isoformat())
    weekday_factor = (1.0, 0.97, 0.98, 1.0, 1.08, 1.12, 0.9)[day.weekday()]
    n = max(1, round(params.rows_per_day * weekday_factor))

    customer = rng.choice(params.customers, n, p=customers.activity)
    # Time of day: a mixture of a midday peak, an evening peak and a thin night-time tail.
    component = rng.choice(3, n, p=[0.45, 0.45, 0.10])
    hours = np.where(
        component == 0,
        rng.normal(12.5, 2.5, n),
        np.where(component == 1, rng.normal(19.0, 2.0, n), rng.uniform(0, 24, n)),
    )
    seconds = np.clip(hours * 3600, 0, 86399).astype(np.int64)

    category = rng.choice(len(MERCHANT_CATEGORIES), n, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
    channel = np.where(
        np.isin(MERCHANT_CATEGORIES[category], ["online_marketplace", "gift_cards"]),
        1,
        rng.choice(3, n, p=[0.68, 0.28, 0.04]),
    )
    card_present = channel != 1
    abroad = rng.random(n) < 0.03
    country = np.where(abroad, rng.integers(0, len(COUNTRIES), n), customers.home_country[customer])
    abroad = country != customers.home_country[customer]
    new_device = rng.random(n) < 0.04
    device_slot = rng.integers(0, customers.devices_per_customer[customer])
    amount = (
        customers.typical_amount[customer]
        * CATEGORY_AMOUNT_SCALE[category]
        * np.exp(rng.normal(0.0, 0.55, n))
    )
    distance = np.where(
        abroad, rng.uniform(300, 9000, n), rng.exponential(8.0, n) * np.where(card_present, 1, 0.3)
    )
    night = (hours % 24 < 5) | (hours % 24 >= 23)

    amount_ratio = amount / (customers.typical_amount[customer] * CATEGORY_AMOUNT_SCALE[category])
    score = (
        3.0 * new_device
        + 2.5 * abroad
        + 2.0 * np.log(amount_ratio)
        + 1.8 * night
        + 2.0 * RISKY_CATEGORIES[category]
        + 0.8 * (~card_present)
        + 0.4 * np.log1p(distance / 50)
        + rng.normal(0.0, 0.5, n)
    )
    intercept = _calibrate_intercept(score, params.fraud_rate / 2.5)
    fraud = rng.random(n) < _sigmoid(score + intercept)

    # Compromised cards are used several times in quick succession: a burst of 1-3 more fraud
    # transactions, minutes apart, on the same card with the same new device.
    seeds = np.flatnonzero(fraud)
    burst_size = rng.integers(0, 4, len(seeds))
    parents = np.repeat(seeds, burst_size)
    burst_offsets = np.concatenate([np.arange(1, k + 1) for k in burst_size] or [np.array([], int)])
    m = len(parents)
    burst_seconds = np.minimum(seconds[parents] + burst_offsets * rng.integers(60, 900, m), 86399)

    def extend(base: np.ndarray, extra: np.ndarray) -> np.ndarray:
        return np.concatenate([base, extra])

    customer = extend(customer, customer[parents])
    seconds = extend(seconds, burst_seconds)
    category = extend(category, rng.choice(np.flatnonzero(RISKY_CATEGORIES), m))
    channel = extend(channel, np.ones(m, dtype=channel.dtype))
    card_present = extend(card_present, np.zeros(m, dtype=bool))
    country = extend(country, country[parents])
    new_device = extend(new_device, new_device[parents] | (rng.random(m) < 0.5))
    device_slot = extend(device_slot, device_slot[parents])
    amount = extend(amount, amount[parents] * np.exp(rng.normal(0.2, 0.4, m)))
    distance = extend(distance, distance[parents])
    fraud = extend(fraud, np.ones(m, dtype=bool))
    if params.concept_drift_from is not None and day >= params.concept_drift_from:
        # Every input above was drawn as without drift (the bursts too: they follow the fraud of
        # the old link, now hidden); only the labels are drawn again, from their own stream.
        fraud = _drifted_fraud(
            seconds=seconds,
            category=category,
            card_present=card_present,
            abroad=country != customers.home_country[customer],
            new_device=new_device,
            amount_ratio=amount
            / (customers.typical_amount[customer] * CATEGORY_AMOUNT_SCALE[category]),
            fraud_rate=params.fraud_rate,
            rng=_rng(params.seed, "concept-drift", day.isoformat()),
        )

    order = np.argsort(seconds, kind="stable")
    total = len(order)
    # Text columns are object arrays whose rows point at shared strings where values repeat
    # (customers, devices, categories): a tenth of the memory of one string per row, and no
    # fixed-width numpy string arrays beside them.
    ordered_customer = customer[order]
    slots = device_slot[order]
    device_numbers = rng.integers(0, 10**8, total)
    customer_names = np.array([f"c{c:06d}" for c in range(params.customers)], dtype=object)
    slot_count = int(slots.max()) + 1
    known_devices = np.array(
        [[f"{name}-d{slot}" for slot in range(slot_count)] for name in customer_names],
        dtype=object,
    )
    device_ids = known_devices[ordered_customer, slots]
    new_rows = np.flatnonzero(new_device[order])
    device_ids[new_rows] = [
        f"{customer_names[c]}-dn{number}"
        for c, number in zip(ordered_customer[new_rows], device_numbers[new_rows], strict=True)
    ]
    start = pd.Timestamp(day, tz="UTC")
    prefix = f"tx-{day:%Y%m%d}-"
    frame = pd.DataFrame(
        {
            "transaction_id": np.array([f"{prefix}{i:07d}" for i in range(total)], dtype=object),
            "event_time": start + pd.to_timedelta(seconds[order], unit="s"),
            "customer_id": customer_names[ordered_customer],
            "device_id": device_ids,
            "amount": np.round(amount[order], 2),
            "merchant_category": MERCHANT_CATEGORIES.astype(object)[category[order]],
            "country": COUNTRIES.astype(object)[country[order]],
            "channel": CHANNELS.astype(object)[channel[order]],
            "card_present": card_present[order],
            "distance_from_home_km": np.round(distance[order], 1),
            "is_fraud": fraud[order].astype(np.int64),
        }
    )
    frame = _inject_defects(frame, params, _rng(params.seed, "defects", day.isoformat()))
    frame = apply_incident(frame, params.incident, _rng(params.seed, "incident", day.isoformat()))
    return frame if params.events_carry_labels else frame.drop(columns=["is_fraud"])


# After a concept drift, fraud is a different mix of the same inputs: mornings, everyday
# categories, card-present payments and amounts below the customer's usual, on known devices at
# home; the old signs (new device, abroad, night, risky categories, large amounts) are inverted.
DRIFT_CATEGORIES = np.isin(MERCHANT_CATEGORIES, ["travel", "health", "entertainment"])


def _drifted_fraud(
    *,
    seconds: np.ndarray,
    category: np.ndarray,
    card_present: np.ndarray,
    abroad: np.ndarray,
    new_device: np.ndarray,
    amount_ratio: np.ndarray,
    fraud_rate: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Fraud flags after the concept drift, at the same overall rate. The new link is as sharp as
    the old one (the factor 2: a model retrained on post-drift days ranks fraud about as well as
    one trained before the drift did, ROC-AUC 0.98 and PR-AUC 0.37-0.39 at 10,000 rows a day),
    so a retraining can recover."""
    hours = seconds / 3600
    morning = (hours >= 6) & (hours < 10)
    night = (hours < 5) | (hours >= 23)
    score = 2.0 * (
        2.5 * morning
        + 2.5 * DRIFT_CATEGORIES[category]
        - 2.0 * np.log(amount_ratio)
        + 1.0 * card_present
        - 2.0 * new_device
        - 2.0 * abroad
        - 1.5 * night
        - 2.0 * RISKY_CATEGORIES[category]
        + rng.normal(0.0, 0.5, len(seconds))
    )
    intercept = _calibrate_intercept(score, fraud_rate)
    return rng.random(len(seconds)) < _sigmoid(score + intercept)


OUTCOME_COLUMNS = ("transaction_id", "is_fraud", "known_at")


def generate_outcomes(
    arrival_day: dt.date, params: GeneratorParams, delay: OutcomeDelay | None = None
) -> pd.DataFrame:
    """The outcome records that become known on `arrival_day` (UTC): one per distinct transaction
    of the earlier days (a replayed row adds none), arriving `delay` days after its event day; a
    delay is drawn per event, seeded by (seed, event day). Columns: transaction_id, is_fraud (the
    label the event would carry; the first of a replayed id's rows) and known_at (a UTC time on
    `arrival_day`, after the event), ordered by known_at. `delay`: the params' own when None."""
    delay = delay or params.outcome_delay
    labelled = replace(params, events_carry_labels=True)
    ms = 10**6  # nanoseconds
    start = pd.Timestamp(arrival_day, tz="UTC").value
    last = start + 86_400_000 * ms - ms  # the arrival day's last millisecond
    parts = []
    for days_late in range(delay.min_days, delay.max_days + 1):
        event_day = arrival_day - dt.timedelta(days=days_late)
        events = generate_transactions(event_day, labelled).drop_duplicates(
            "transaction_id", keep="first"
        )
        rng = _rng(params.seed, "outcome-delay", event_day.isoformat())
        events = events[delay.draw(rng, len(events)) == days_late]
        # A whole millisecond on the arrival day, after the event (same day with 0 days' delay).
        event_ns = events["event_time"].astype("int64").to_numpy()
        earliest = np.maximum(event_ns + ms, start)
        offset = np.floor(rng.random(len(events)) * ((last - earliest) // ms + 1)).astype(np.int64)
        known_at = pd.to_datetime(earliest + offset * ms, unit="ns", utc=True)
        parts.append(
            pd.DataFrame(
                {
                    "transaction_id": events["transaction_id"].to_numpy(),
                    "is_fraud": events["is_fraud"].to_numpy(),
                    "known_at": known_at,
                }
            )
        )
    outcomes = pd.concat(parts, ignore_index=True)
    return outcomes.sort_values("known_at", kind="stable", ignore_index=True)


def _volume_drop(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame[rng.random(len(frame)) < 0.1]


def _stale(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame[frame["event_time"].dt.hour < 18]


def _schema_break(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame.drop(columns=["channel"])


def _bad_rows(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    bad = rng.random(len(frame)) < 0.2
    return frame.assign(amount=np.where(bad, -frame["amount"].abs(), frame["amount"]))


def _null_spike(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[rng.random(len(frame)) < 0.05, "merchant_category"] = None
    return frame


def _label_shift(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    flipped = rng.random(len(frame)) < 0.1
    return frame.assign(is_fraud=np.where(flipped, 1, frame["is_fraud"]))


def _label_noise(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame.assign(is_fraud=rng.permutation(frame["is_fraud"].to_numpy()))


def _leak(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    leaked = frame["is_fraud"] * 15000 + rng.uniform(0, 50, len(frame))
    return frame.assign(distance_from_home_km=leaked.round(1))


def _drift(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame.assign(amount=(frame["amount"] * 4).clip(upper=49999).round(2))


INCIDENTS = {
    "none": lambda frame, rng: frame,
    "volume_drop": _volume_drop,  # 10% of a normal day's rows
    "stale": _stale,  # the feed stops at 18:00
    "schema_break": _schema_break,  # a contract column disappears
    "bad_rows": _bad_rows,  # a fifth of the amounts are negative
    "null_spike": _null_spike,  # 5% of merchant categories missing (allowed, but unusual)
    "label_shift": _label_shift,  # one row in ten suddenly labelled fraud
    "label_noise": _label_noise,  # labels shuffled: nothing left to learn
    "leak": _leak,  # a feature carries the label
    "drift": _drift,  # amounts four times their usual size
}


def apply_incident(frame: pd.DataFrame, incident: str, rng: np.random.Generator) -> pd.DataFrame:
    if incident not in INCIDENTS:
        raise ValueError(f"unknown incident '{incident}' (known: {', '.join(INCIDENTS)})")
    return INCIDENTS[incident](frame, rng).reset_index(drop=True)


def _inject_defects(
    frame: pd.DataFrame, params: GeneratorParams, rng: np.random.Generator
) -> pd.DataFrame:
    """Defects real feeds have: missing values, replayed records, impossible values."""
    n = len(frame)
    frame = frame.astype({"merchant_category": object, "device_id": object})
    for column in ("merchant_category", "distance_from_home_km", "device_id", "amount"):
        rate = params.null_rate if column != "amount" else params.null_rate / 4
        frame.loc[rng.random(n) < rate, column] = None
    bad = rng.random(n) < params.out_of_range_rate
    frame.loc[bad, "amount"] = -frame.loc[bad, "amount"].abs()
    bad = rng.random(n) < params.out_of_range_rate / 2
    frame.loc[bad, "distance_from_home_km"] = -1.0
    bad = rng.random(n) < params.out_of_range_rate / 2
    frame.loc[bad, "country"] = "XX"
    replayed = frame[rng.random(n) < params.duplicate_rate]
    frame = pd.concat([frame, replayed]).sort_values("event_time", kind="stable")
    return frame.reset_index(drop=True)
