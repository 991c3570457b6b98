"""Seeded synthetic card transactions, one calendar day at a time.

Customers (home country, usual spend, usual devices) depend on the seed only, so their behaviour is
consistent across days; the transactions of a day depend on the seed and the date, so the same seed
and date always give the same rows. Fraud is driven by learnable, noisy patterns (unusual amount for
the customer, new device, foreign country, night-time, risky merchant categories, bursts of several
transactions on a compromised card), and a few realistic defects are injected for validation to
find.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

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
    return apply_incident(frame, params.incident, _rng(params.seed, "incident", day.isoformat()))


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
