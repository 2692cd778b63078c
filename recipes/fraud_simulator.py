"""A seeded card-transaction simulator with injected fraud: the fraud recipe's embedded data.

No public fraud data set is reachable offline, so the fraud recipe trains on transactions
generated here.  The simulator is deliberately simple and fully documented so results are
reproducible and easy to reason about; it is *not* a model of any real bank's traffic.

Legitimate behaviour (one profile per account, drawn once from the seed):

* a daily transaction rate (gamma distributed, mean ~1.5 a day);
* an activity rhythm: a preferred hour of day with a spread (10% of accounts are night owls
  centred between 22:00 and 02:00, so a night-time purchase alone is not proof of fraud);
* a spending level (log-normal median amount) and per-category multipliers;
* category preferences (a sparse Dirichlet draw over :data:`CATEGORIES`);
* an online-shopping propensity;
* for 8% of accounts, small recurring micro-payments (app stores, transit), so a tiny amount
  alone is not proof of fraud either.

Fraud episodes (each chosen account gets one, at a random time after its first week):

* ``card_testing``: 3-8 online transactions of 0.5-3.0 a few minutes apart, then with
  probability 0.5 one or two large purchases;
* ``account_takeover``: a burst of 4-10 online purchases within about two hours, 3-10x the
  account's usual amount, in electronics / luxury / travel;
* ``category_shift``: 2-5 purchases over one or two days in categories the account
  practically never uses, 2-5x its usual amount;
* ``night_spike``: 3-6 purchases between 01:00 and 05:00 on one night, 1-4x the usual
  amount, on an account whose rhythm is daytime.

Every fraud transaction is labelled ``is_fraud = 1`` and carries its ``fraud_pattern``.
The output has the columns the fraud recipe reads from a user CSV (see ``recipes/fraud.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORIES: tuple[str, ...] = (
    "grocery", "restaurant", "fuel", "retail", "online_services", "travel", "electronics",
    "luxury",
)  # fmt: skip
"""Merchant categories; a transaction's ``category`` column holds the index into this tuple."""

FRAUD_PATTERNS: tuple[str, ...] = (
    "card_testing", "account_takeover", "category_shift", "night_spike",
)  # fmt: skip

# typical amount of each category relative to the account's median spend
_CATEGORY_AMOUNT = np.array([1.0, 0.8, 1.2, 1.5, 0.5, 6.0, 5.0, 8.0])
_CATEGORY_ONLINE_BOOST = np.array([0.0, 0.0, 0.0, 0.2, 0.9, 0.5, 0.4, 0.2])
_HIGH_RISK = np.array([CATEGORIES.index(c) for c in ("electronics", "luxury", "travel")])
_SECONDS_PER_DAY = 86_400
_COLUMNS = ("account_id", "seconds", "amount", "category", "is_online", "is_fraud", "fraud_pattern")


def simulate_transactions(
    n_accounts: int = 4000,
    days: int = 90,
    fraud_account_rate: float = 0.15,
    seed: int = 0,
    start: str = "2024-01-01",
) -> pd.DataFrame:
    """Simulate ``days`` of card transactions for ``n_accounts`` accounts.

    ``fraud_account_rate`` is the fraction of accounts that suffer one fraud episode.  The
    same arguments always give the same frame.  Columns: ``account_id`` (int),
    ``timestamp`` (datetime64, unique within an account, sorted), ``amount`` (float, > 0),
    ``category`` (int index into :data:`CATEGORIES`), ``is_online`` (0/1), ``is_fraud``
    (0/1) and ``fraud_pattern`` ('' for legitimate transactions).
    """
    if n_accounts < 1 or days < 8:
        raise ValueError(f"need n_accounts >= 1 and days >= 8, got {n_accounts}, {days}")
    if not 0.0 <= fraud_account_rate <= 1.0:
        raise ValueError(f"fraud_account_rate must be in [0, 1], got {fraud_account_rate}")
    rng = np.random.default_rng(seed)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in _COLUMNS}
    fraud_accounts = rng.random(n_accounts) < fraud_account_rate
    for account in range(n_accounts):
        profile = _draw_profile(rng)
        seconds, amounts, categories, online = _legit_transactions(rng, profile, days)
        labels = np.zeros(len(seconds), dtype=np.int64)
        patterns = np.full(len(seconds), "", dtype=object)
        if fraud_accounts[account]:
            pattern = FRAUD_PATTERNS[rng.integers(len(FRAUD_PATTERNS))]
            if pattern == "night_spike" and profile["night_owl"]:
                pattern = FRAUD_PATTERNS[rng.integers(len(FRAUD_PATTERNS) - 1)]
            f_sec, f_amt, f_cat, f_onl = _fraud_episode(rng, profile, days, pattern)
            seconds = np.concatenate([seconds, f_sec])
            amounts = np.concatenate([amounts, f_amt])
            categories = np.concatenate([categories, f_cat])
            online = np.concatenate([online, f_onl])
            labels = np.concatenate([labels, np.ones(len(f_sec), dtype=np.int64)])
            patterns = np.concatenate([patterns, np.full(len(f_sec), pattern, dtype=object)])
        order = np.argsort(seconds, kind="stable")
        parts = {
            "account_id": np.full(len(order), account, dtype=np.int64),
            "seconds": _make_unique(np.round(seconds[order]).astype(np.int64)),
            "amount": np.round(amounts[order], 2).clip(0.01),
            "category": categories[order].astype(np.int64),
            "is_online": online[order].astype(np.int64),
            "is_fraud": labels[order],
            "fraud_pattern": patterns[order],
        }
        for key, values in parts.items():
            columns[key].append(values)
    frame = pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
    frame.insert(1, "timestamp", pd.Timestamp(start) + pd.to_timedelta(frame["seconds"], unit="s"))
    return frame.drop(columns="seconds")


def _draw_profile(rng: np.random.Generator) -> dict:
    night_owl = rng.random() < 0.10
    centre = rng.uniform(22, 26) % 24 if night_owl else rng.uniform(9, 19)
    prefs = rng.dirichlet(np.full(len(CATEGORIES), 0.4))
    return {
        "rate": rng.gamma(shape=2.0, scale=0.75),  # transactions a day, mean 1.5
        "hour_centre": centre,
        "hour_spread": rng.uniform(1.5, 3.5),
        "night_owl": night_owl,
        "median_amount": float(np.exp(rng.normal(np.log(35.0), 0.5))),
        "prefs": prefs,
        "online": rng.beta(2, 5),
        "micro": rng.random() < 0.08,
    }


def _legit_transactions(rng: np.random.Generator, p: dict, days: int):
    n = max(1, rng.poisson(p["rate"] * days))
    day = rng.integers(0, days, n)
    hour = (rng.normal(p["hour_centre"], p["hour_spread"], n)) % 24
    seconds = day * _SECONDS_PER_DAY + hour * 3600
    categories = rng.choice(len(CATEGORIES), n, p=p["prefs"])
    amounts = p["median_amount"] * _CATEGORY_AMOUNT[categories] * np.exp(rng.normal(0, 0.6, n))
    online = rng.random(n) < np.clip(p["online"] + _CATEGORY_ONLINE_BOOST[categories], 0, 0.95)
    if p["micro"]:  # recurring tiny online payments: legitimate small amounts
        k = rng.integers(2, 6)
        micro_days = rng.choice(days, size=min(days, k * days // 30), replace=False)
        m_sec = micro_days * _SECONDS_PER_DAY + rng.uniform(0, 24, len(micro_days)) * 3600
        seconds = np.concatenate([seconds, m_sec])
        amounts = np.concatenate([amounts, rng.choice([0.99, 1.99, 2.49], len(m_sec))])
        categories = np.concatenate(
            [categories, np.full(len(m_sec), CATEGORIES.index("online_services"))]
        )
        online = np.concatenate([online, np.ones(len(m_sec), dtype=bool)])
    return seconds, amounts, categories, online.astype(np.int64)


def _fraud_episode(rng: np.random.Generator, p: dict, days: int, pattern: str):
    start = rng.uniform(7, days - 0.5) * _SECONDS_PER_DAY
    median = p["median_amount"]
    if pattern == "card_testing":
        n = int(rng.integers(3, 9))
        seconds = start + np.cumsum(rng.uniform(60, 600, n))
        amounts = rng.uniform(0.5, 3.0, n)
        categories = rng.choice([3, 4], n)
        if rng.random() < 0.5:
            k = int(rng.integers(1, 3))
            seconds = np.concatenate([seconds, seconds[-1] + np.cumsum(rng.uniform(300, 3600, k))])
            amounts = np.concatenate([amounts, median * rng.uniform(4, 12, k)])
            categories = np.concatenate([categories, rng.choice(_HIGH_RISK, k)])
    elif pattern == "account_takeover":
        n = int(rng.integers(4, 11))
        seconds = start + np.sort(rng.uniform(0, 7200, n))
        amounts = median * rng.uniform(3, 10, n)
        categories = rng.choice(_HIGH_RISK, n)
    elif pattern == "category_shift":
        n = int(rng.integers(2, 6))
        rare = np.flatnonzero(p["prefs"] < 0.03)
        rare = rare if len(rare) else np.array([int(np.argmin(p["prefs"]))])
        seconds = start + np.sort(rng.uniform(0, rng.uniform(1, 2) * _SECONDS_PER_DAY, n))
        amounts = median * rng.uniform(2, 5, n)
        categories = rng.choice(rare, n)
    elif pattern == "night_spike":
        n = int(rng.integers(3, 7))
        night = np.floor(start / _SECONDS_PER_DAY) * _SECONDS_PER_DAY
        seconds = night + np.sort(rng.uniform(1, 5, n)) * 3600  # daytime accounts only
        amounts = median * rng.uniform(1, 4, n)
        categories = rng.choice(len(CATEGORIES), n, p=p["prefs"])
    else:  # pragma: no cover - FRAUD_PATTERNS is closed
        raise ValueError(f"unknown fraud pattern {pattern!r}")
    online = (rng.random(len(seconds)) < (0.9 if pattern != "night_spike" else 0.5)).astype(int)
    seconds = np.minimum(seconds, days * _SECONDS_PER_DAY - 1)
    return seconds, amounts, categories, online


def _make_unique(seconds: np.ndarray) -> np.ndarray:
    """Sorted integer seconds made strictly increasing (a collision moves one second on)."""
    steps = np.arange(len(seconds))
    return np.maximum.accumulate(seconds - steps) + steps


def main(argv: list[str] | None = None) -> int:
    """``python -m lstm_zoo.recipes.fraud_simulator OUT.csv``: write simulated transactions
    in the CSV format the fraud recipe reads (to inspect them, or as a template)."""
    import argparse

    from lstm_zoo.files import atomic_path

    parser = argparse.ArgumentParser(prog="python -m lstm_zoo.recipes.fraud_simulator",
                                     description=main.__doc__)
    parser.add_argument("out", help="CSV file to write")
    parser.add_argument("--accounts", type=int, default=4000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--fraud-account-rate", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    frame = simulate_transactions(args.accounts, args.days, args.fraud_account_rate, args.seed)
    with atomic_path(args.out, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    print(f"wrote {len(frame)} transactions ({int(frame.is_fraud.sum())} fraudulent) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
