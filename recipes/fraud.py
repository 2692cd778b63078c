"""Fraud recipe: score each card transaction from the account's recent transaction sequence.

Embedded default data: the seeded simulator in :mod:`lstm_zoo.recipes.fraud_simulator`
(no public fraud data is reachable offline).  A user CSV has one row per transaction with
the columns

====================  ===========================================================
``account_id``        any id (string or number); rows of one account in time order
``timestamp``         anything pandas parses (ISO 8601 recommended), local time
``amount``            transaction amount, a number >= 0
``category``          merchant category code, an integer >= 0
``is_online``         0 or 1 (card not present)
``is_fraud``          0 or 1, the label
``fraud_pattern``     optional; the fraud type, reported as recall per pattern
====================  ===========================================================

For each transaction the model reads the account's last ``window`` transactions ending with
it (left-padded with zero rows) and returns the probability that this transaction is fraud.
The serving input ``transactions`` is float32 [batch, time, 5] in the feature order of
:data:`FEATURES`: ``amount``, ``hour`` (0-24, fractional), ``hours_since_previous`` (hours
since the account's previous transaction; 720 for its first), ``category`` (code as a
float), ``is_online``; all-zero rows are padding.  The model encodes the raw features itself
(log amounts and gaps scaled with training statistics, hour on the circle, one-hot category).

Splits keep accounts and time apart: accounts are shuffled (seeded) into 60/20/20 groups;
training scores transactions of the training accounts before the cut-off (60% of the time
range), validation and test score transactions of their own accounts after it.  Legitimate
training sequences are subsampled (all frauds kept) and weighted back, so the output stays
a calibrated probability.  The non-sequential baseline is a logistic regression on the
same encoded features of the single scored transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from keras import ops

from lstm_zoo.data import timeseries as ts
from lstm_zoo.errors import DataError, excerpt
from lstm_zoo.models.classifier import build_sequence_classifier
from lstm_zoo.models.stack import accepts_lstm_options, lstm_switch_space
from lstm_zoo.recipe import Option, Recipe, RecipeData, TrainConfig
from lstm_zoo.recipes.fraud_simulator import CATEGORIES, simulate_transactions
from lstm_zoo.registry import register_model, register_recipe

FEATURES: tuple[str, ...] = ("amount", "hour", "hours_since_previous", "category", "is_online")
COLUMNS: tuple[str, ...] = ("account_id", "timestamp", "amount", "category", "is_online", "is_fraud")
WINDOW = 24
FIRST_GAP_HOURS = 720.0  # "hours since previous" of an account's first transaction
ALERT_BUDGET = 0.01  # precision and recall when alerting on the top 1% of scored transactions


# ---- in-graph feature encoding (registered: safe-mode .keras loading) ---------------------


@keras.saving.register_keras_serializable(package="lstm_zoo.fraud")
class TransactionEncoder(keras.layers.Layer):
    """Raw features [batch, time, 5] -> encoded [batch, time, 5 + num_categories].

    (log1p amount and log1p gap standardised with training statistics, sin/cos of the hour,
    one-hot category, is_online).  Keeps the padding mask of a preceding ``Masking`` layer.
    """

    def __init__(self, num_categories: int, amount_mean: float = 0.0, amount_std: float = 1.0,
                 gap_mean: float = 0.0, gap_std: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True
        self.num_categories = int(num_categories)
        self.amount_mean, self.amount_std = float(amount_mean), float(amount_std)
        self.gap_mean, self.gap_std = float(gap_mean), float(gap_std)

    def call(self, x):
        x = ops.cast(x, "float32")
        amount = (ops.log1p(ops.maximum(x[..., 0], 0.0)) - self.amount_mean) / self.amount_std
        angle = x[..., 1] * (2.0 * np.pi / 24.0)
        gap = (ops.log1p(ops.maximum(x[..., 2], 0.0)) - self.gap_mean) / self.gap_std
        category = ops.one_hot(ops.cast(x[..., 3], "int32"), self.num_categories)
        scalars = ops.stack([amount, ops.sin(angle), ops.cos(angle), gap, x[..., 4]], axis=-1)
        return ops.concatenate([scalars, category], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 5 + self.num_categories)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_categories": self.num_categories,
                "amount_mean": self.amount_mean, "amount_std": self.amount_std,
                "gap_mean": self.gap_mean, "gap_std": self.gap_std}  # fmt: skip


def encode_numpy(features: np.ndarray, stats: dict[str, float], num_categories: int) -> np.ndarray:
    """The encoder's transform in numpy, for the single-transaction baseline ([n, 5] rows)."""
    angle = features[:, 1] * (2.0 * np.pi / 24.0)
    amount = (np.log1p(np.maximum(features[:, 0], 0)) - stats["amount_mean"]) / stats["amount_std"]
    gap = (np.log1p(np.maximum(features[:, 2], 0)) - stats["gap_mean"]) / stats["gap_std"]
    category = np.eye(num_categories)[features[:, 3].astype(int).clip(0, num_categories - 1)]
    return np.column_stack([amount, np.sin(angle), np.cos(angle), gap, features[:, 4], category])


@register_model(
    "fraud-lstm",
    task="classification",
    description="fraud probability of a card transaction from the account's recent "
    "transaction sequence (feature encoding inside the graph)",
    inputs="transactions float32 [batch, time, 5]: amount, hour, hours_since_previous, "
    "category, is_online (all-zero rows are padding)",
    outputs="fraud_probability float32 [batch]",
    recipe="fraud",
)
@accepts_lstm_options
def build_fraud_lstm(
    num_categories: int = len(CATEGORIES),
    amount_mean: float = 0.0,
    amount_std: float = 1.0,
    gap_mean: float = 0.0,
    gap_std: float = 1.0,
    units: int = 32,
    depth: int = 1,
    dropout: float = 0.1,
    head_units: int = 16,
    **lstm_options: Any,
) -> keras.Model:
    """Transactions [batch, time, 5] -> fraud_probability [batch]; statistics from training."""
    encoder = TransactionEncoder(num_categories, amount_mean, amount_std, gap_mean, gap_std,
                                 name="transaction_encoder")
    return build_sequence_classifier(
        n_features=len(FEATURES), encoder=encoder, mask_value=0.0, units=units, depth=depth,
        dropout=dropout, head_units=head_units,
        input_name="transactions", output_name="fraud_probability", name="fraud_lstm",
        **lstm_options,
    )  # fmt: skip


# ---- data: validation, features, sequences, splits (numpy/pandas only) ---------------------


def validate_transactions(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Checked transactions: the :data:`COLUMNS` typed, in file order.

    Missing columns, non-numeric or missing values, out-of-range codes, unparseable
    timestamps, and timestamps that repeat or go backwards within an account raise a
    :class:`DataError` naming the file, column, account and line.
    """
    ts.require_columns(frame, COLUMNS, source=source)
    numbers = ts.numeric_columns(frame, ["amount", "category", "is_online", "is_fraud"],
                                 source=source)
    for column in numbers.columns:
        missing = np.flatnonzero(numbers[column].isna().to_numpy())
        if len(missing):
            raise DataError(f"{source}: column {column!r} has a missing value at line "
                            f"{ts.file_line(frame, missing[0])} ({len(missing)} in all; transactions cannot be "
                            "interpolated, fix or drop those rows)")
    rules = {"amount": (lambda v: v >= 0, "a number >= 0"),
             "category": (lambda v: (v >= 0) & (v == np.round(v)), "an integer code >= 0"),
             "is_online": (lambda v: np.isin(v, (0, 1)), "0 or 1"),
             "is_fraud": (lambda v: np.isin(v, (0, 1)), "0 or 1")}  # fmt: skip
    for column, (ok, expected) in rules.items():
        bad = np.flatnonzero(~ok(numbers[column].to_numpy()))
        if len(bad):
            raise DataError(f"{source}: column {column!r} has value {numbers[column].iloc[bad[0]]!r} "
                            f"at line {ts.file_line(frame, bad[0])}; expected {expected}")
    if frame["account_id"].isna().any():
        row = int(np.flatnonzero(frame["account_id"].isna().to_numpy())[0])
        raise DataError(f"{source}: column 'account_id' is empty at line {ts.file_line(frame, row)}")
    try:
        stamps = pd.to_datetime(frame["timestamp"], errors="coerce")
    except (ValueError, TypeError) as exc:  # e.g. mixed time zones
        raise DataError(f"{source}: column 'timestamp' cannot be parsed as times: "
                        f"{excerpt(str(exc), 300)}") from None
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        raise DataError(f"{source}: column 'timestamp' has an empty or unparseable value "
                        f"{excerpt(frame['timestamp'].iloc[bad[0]])} at line {ts.file_line(frame, bad[0])}")
    out = pd.DataFrame({"account_id": frame["account_id"].astype(str), "timestamp": stamps,
                        **{c: numbers[c] for c in numbers.columns}})
    if "fraud_pattern" in frame.columns:
        out["fraud_pattern"] = frame["fraud_pattern"].fillna("").astype(str)
    out.attrs.update(frame.attrs)  # the file's line map, for the order check's messages
    _check_account_order(out, source)
    return out


def _check_account_order(frame: pd.DataFrame, source: str) -> None:
    order = np.lexsort((np.arange(len(frame)), frame["account_id"].to_numpy()))
    accounts = frame["account_id"].to_numpy()[order]
    times = frame["timestamp"].to_numpy()[order]
    same = accounts[1:] == accounts[:-1]
    steps = times[1:] - times[:-1]
    for bad, what in ((same & (steps == np.timedelta64(0)), "a duplicated timestamp"),
                      (same & (steps < np.timedelta64(0)), "a timestamp earlier than the one before")):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column 'timestamp' has {what} for account {excerpt(accounts[k + 1])}: "
                f"{pd.Timestamp(times[k + 1])} at line {ts.file_line(frame, order[k + 1])} after "
                f"{pd.Timestamp(times[k])} at line {ts.file_line(frame, order[k])} (each account's transactions "
                "must be in strictly increasing time order)")


def transaction_features(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Sort by (account, time) and compute the raw :data:`FEATURES` [n, 5] of every row."""
    frame = frame.sort_values(["account_id", "timestamp"], kind="stable").reset_index(drop=True)
    stamp = frame["timestamp"]
    hour = (stamp.dt.hour + stamp.dt.minute / 60.0 + stamp.dt.second / 3600.0).to_numpy()
    gap = stamp.groupby(frame["account_id"]).diff().dt.total_seconds().to_numpy() / 3600.0
    gap = np.where(np.isnan(gap), FIRST_GAP_HOURS, gap)
    features = np.column_stack([frame["amount"], hour, gap, frame["category"], frame["is_online"]])
    return frame, features.astype("float64")


def sequences(features: np.ndarray, position: np.ndarray, rows: np.ndarray,
              window: int = WINDOW) -> np.ndarray:
    """Left-padded windows [len(rows), window, 5] ending at each of ``rows``.

    ``position`` is each row's 0-based index within its account (rows sorted by account and
    time), so a window never reaches into another account; padding rows are all zeros.
    """
    offsets = np.arange(window) - (window - 1)
    index = rows[:, None] + offsets[None, :]
    valid = offsets[None, :] >= -position[rows][:, None]
    out = features[np.where(valid, index, 0)] * valid[..., None]
    return out.astype("float32")


def split_rows(frame: pd.DataFrame, seed: int, time_fraction: float = 0.6,
               account_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> dict[str, np.ndarray]:
    """Row indices scored in each split: disjoint accounts, and val/test after the time cut."""
    accounts = np.array(sorted(frame["account_id"].unique()))
    np.random.default_rng(seed).shuffle(accounts)
    cuts = np.round(np.cumsum(account_fractions)[:2] / sum(account_fractions) * len(accounts))
    groups = np.split(accounts, cuts.astype(int))
    start, stop = frame["timestamp"].min(), frame["timestamp"].max()
    cut_time = start + (stop - start) * time_fraction
    before = (frame["timestamp"] < cut_time).to_numpy()
    member = [frame["account_id"].isin(g).to_numpy() for g in groups]
    return {"train": np.flatnonzero(member[0] & before), "val": np.flatnonzero(member[1] & ~before),
            "test": np.flatnonzero(member[2] & ~before), "cut_time": cut_time}  # fmt: skip


# ---- metrics -----------------------------------------------------------------------------------


def ranking_metrics(y: np.ndarray, score: np.ndarray, budget: float = ALERT_BUDGET) -> dict[str, float]:
    """PR-AUC (average precision), ROC-AUC, and precision/recall of the top ``budget`` scores."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y).astype(int)
    alerts = max(1, int(round(budget * len(y))))
    top = np.argsort(-np.asarray(score), kind="stable")[:alerts]
    both = 0 < y.sum() < len(y)
    return {
        "pr_auc": float(average_precision_score(y, score)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y, score)) if both else float("nan"),
        f"precision_at_top_{budget:.0%}": float(y[top].mean()),
        f"recall_at_top_{budget:.0%}": float(y[top].sum() / max(1, y.sum())),
    }


# ---- the recipe --------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="lstm_zoo")
def per_example_binary_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Binary cross-entropy of each example of a ``[batch]`` output, as ``[batch]``.

    Keras' ``binary_crossentropy`` averages over the last axis, so on a rank-1 output it
    returns one value for the whole batch, and ``fit(sample_weight=...)`` then only rescales
    that batch mean by the mean weight.  The importance weights of the subsampled legitimate
    sequences must weight each example, so the loss keeps one value per example.
    """
    return keras.losses.binary_crossentropy(ops.expand_dims(y_true, -1),
                                            ops.expand_dims(y_pred, -1))


@register_recipe
class FraudRecipe(Recipe):
    """Sequence fraud scoring (see the module docstring)."""

    name = "fraud"
    task = "classification"
    description = ("per-transaction fraud probability from the account's last transactions (seeded "
                   "simulator or a transactions CSV), next to a single-transaction logistic "
                   "regression")
    default_model = "fraud-lstm"
    data_provenance = ("simulated by lstm_zoo.recipes.fraud_simulator (seeded, documented "
                       "patterns: card testing, account takeover, category shift, night spike)")
    train_config = TrainConfig(epochs=30, batch_size=256, learning_rate=2e-3, patience=5,
                               monitor="val_pr_auc")  # select on the ranking quality
    headline_metric = "pr_auc"
    headline_higher_is_better = True

    options = (
        Option("--window", "transactions per sequence"),
        Option("--legit-keep", "fraction of legitimate training sequences kept (weighted back)"),
        Option("--accounts", "simulated accounts when no --data is given"),
        Option("--days", "simulated days when no --data is given"),
        Option("--fraud-account-rate", "simulated share of accounts with a fraud episode"),
        Option("--data-seed", "seed of the simulator, account split and subsampling"),
    )

    def load(self, data: str | Path | None = None, *, seed: int = 0, window: int = WINDOW,
             legit_keep: float = 0.25, accounts: int = 4000, days: int = 90,
             fraud_account_rate: float = 0.15, data_seed: int = 0, **options: Any) -> RecipeData:
        """Sequences from the simulator (``data`` None) or a CSV.

        ``data_seed`` (not the training ``seed``) fixes the simulated data, the account split
        and the subsampling, so runs with different training seeds see the same splits.
        """
        if options:
            raise TypeError(f"unknown fraud option(s): {', '.join(sorted(options))}")
        if not 0 < legit_keep <= 1:
            raise ValueError(f"legit_keep must be in (0, 1], got {legit_keep}")
        if data is None:
            source = (f"simulator(accounts={accounts}, days={days}, "
                      f"fraud_account_rate={fraud_account_rate}, seed={data_seed})")
            frame = simulate_transactions(accounts, days, fraud_account_rate, seed=data_seed)
            frame["account_id"] = frame["account_id"].astype(str)
        else:
            source = str(data)
            frame = validate_transactions(ts.read_csv(data, dtype={"account_id": str}), source=source)
        frame, features = transaction_features(frame)
        position = frame.groupby("account_id").cumcount().to_numpy()
        rows = split_rows(frame, data_seed)
        labels = frame["is_fraud"].to_numpy().astype("float32")
        for split in ("train", "val", "test"):
            if len(rows[split]) == 0 or labels[rows[split]].sum() == 0:
                raise DataError(f"{source}: the {split} split ({split} accounts, "
                                f"{'before' if split == 'train' else 'after'} {rows['cut_time']}) "
                                "has no fraud-labelled transactions; the data is too small "
                                "or has too few frauds to train and evaluate")
        rng = np.random.default_rng(data_seed)
        train = rows["train"]
        legit = labels[train] == 0
        kept = train[~legit | (rng.random(len(train)) < legit_keep)]
        weights = np.where(labels[kept] == 1, 1.0, 1.0 / legit_keep).astype("float32")
        log_amount = np.log1p(features[train, 0])
        log_gap = np.log1p(features[train, 2])
        stats = {"amount_mean": float(log_amount.mean()), "amount_std": float(log_amount.std() or 1),
                 "gap_mean": float(log_gap.mean()), "gap_std": float(log_gap.std() or 1)}
        num_categories = int(max(len(CATEGORIES), frame["category"].max() + 1))
        splits = {"train": (sequences(features, position, kept, window), labels[kept], weights),
                  "val": (sequences(features, position, rows["val"], window), labels[rows["val"]]),
                  "test": (sequences(features, position, rows["test"], window), labels[rows["test"]])}
        patterns = frame["fraud_pattern"].to_numpy() if "fraud_pattern" in frame else None
        info = {"source": source, "transactions": len(frame), "accounts": frame["account_id"].nunique(),
                "fraud_rate": float(labels.mean()), "window": window, "legit_keep": legit_keep,
                "cut_time": str(rows["cut_time"]), "feature_order": list(FEATURES),
                **{f"{s}_sequences": len(splits[s][1]) for s in splits},
                **{f"{s}_frauds": int(splits[s][1].sum()) for s in splits}}  # fmt: skip
        extras = {"baseline_features": {s: features[r] for s, r in (("train", kept),
                                        ("val", rows["val"]), ("test", rows["test"]))},
                  "train_weights": weights, "stats": stats, "num_categories": num_categories,
                  "test_patterns": None if patterns is None else patterns[rows["test"]]}
        return RecipeData(splits["train"], splits["val"], splits["test"],
                          {"num_categories": num_categories, **stats}, info, extras)

    def loss(self) -> Any:
        return per_example_binary_crossentropy

    def metrics(self) -> list[Any]:
        return [keras.metrics.AUC(curve="PR", name="pr_auc")]

    def fit(self, model: Any, data: RecipeData, config: TrainConfig, callbacks: list[Any],
            verbose: Any = "auto") -> Any:
        """Fit with the importance weights of the subsampled legitimate sequences."""
        from lstm_zoo.recipe import repeating_batches

        x, y, weights = data.train
        if config.steps_per_epoch:  # every epoch that many batches (see repeating_batches)
            x, y, weights = repeating_batches(x, y, weights, batch_size=config.batch_size), None, None
        return model.fit(x, y, sample_weight=weights, validation_data=data.val,
                         epochs=config.epochs,
                         batch_size=config.batch_size if y is not None else None,
                         steps_per_epoch=config.steps_per_epoch, callbacks=callbacks,
                         verbose=verbose, shuffle=y is not None)

    def baseline_scores(self, data: RecipeData, split: str = "test") -> np.ndarray:
        """Scores of the logistic regression on single-transaction features (fit on train)."""
        from sklearn.linear_model import LogisticRegression

        e = data.extras
        encode = lambda f: encode_numpy(f, e["stats"], e["num_categories"])  # noqa: E731
        model = LogisticRegression(max_iter=2000)
        model.fit(encode(e["baseline_features"]["train"]), data.train[1],
                  sample_weight=e["train_weights"])
        return model.predict_proba(encode(e["baseline_features"][split]))[:, 1]

    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        """PR-AUC, ROC-AUC and precision at the alert budget, LSTM vs logistic regression."""
        x, y = data.test
        lstm = np.asarray(model.predict(x, batch_size=1024, verbose=0)).reshape(-1)
        base = self.baseline_scores(data)
        result = {"lstm": ranking_metrics(y, lstm),
                  "logistic_regression_single_transaction": ranking_metrics(y, base),
                  "test_sequences": int(len(y)), "test_frauds": int(y.sum()),
                  "base_rate": float(y.mean())}  # fmt: skip
        result["pr_auc"] = result["lstm"]["pr_auc"]
        result["lstm_beats_baseline_pr_auc"] = bool(
            result["pr_auc"] > result["logistic_regression_single_transaction"]["pr_auc"])
        patterns = data.extras["test_patterns"]
        if patterns is not None:  # recall of each fraud pattern within the alert budget
            alerts = max(1, int(round(ALERT_BUDGET * len(y))))
            flagged = {name: np.zeros(len(y), bool) for name in ("lstm", "baseline")}
            for name, score in (("lstm", lstm), ("baseline", base)):
                flagged[name][np.argsort(-score, kind="stable")[:alerts]] = True
            result["recall_at_budget_by_pattern"] = {
                p: {n: float(flagged[n][patterns == p].mean()) for n in flagged}
                for p in sorted(set(patterns[y == 1]))}  # fmt: skip
        x_val, y_val = data.val  # what settings may be chosen on (never on the test figures)
        result["validation"] = {
            "lstm": ranking_metrics(y_val, np.asarray(model.predict(x_val, batch_size=1024,
                                                                    verbose=0)).reshape(-1)),
            "logistic_regression_single_transaction": ranking_metrics(
                y_val, self.baseline_scores(data, "val"))}  # fmt: skip
        return result

    def plot(self, model: Any, data: RecipeData, out_dir: Path) -> list[Path]:
        """``pr_curve.png``: precision-recall of the LSTM and the baseline on the test split."""
        from sklearn.metrics import precision_recall_curve

        from lstm_zoo.plots import figure, save_figure

        x, y = data.test
        scores = {"LSTM (sequence)": np.asarray(model.predict(x, batch_size=1024, verbose=0)).ravel(),
                  "logistic regression (single transaction)": self.baseline_scores(data)}
        plt = figure()
        fig, ax = plt.subplots(figsize=(6.5, 5))
        for label, score in scores.items():
            precision, recall, _ = precision_recall_curve(y, score)
            ax.plot(recall, precision, label=label)
        ax.axhline(y.mean(), color="grey", ls=":", label=f"base rate {y.mean():.3%}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"fraud: precision-recall on {len(y)} test transactions")
        ax.legend(fontsize=8)
        return [save_figure(fig, out_dir / "pr_curve.png")]

    def search_space(self, hp: Any) -> dict[str, Any]:
        return {
            "units": hp.Choice("units", [16, 32, 64]),
            "depth": hp.Int("depth", 1, 2),
            "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1),
            **lstm_switch_space(hp),
            "learning_rate": hp.Float("learning_rate", 3e-4, 5e-3, sampling="log"),
            "batch_size": hp.Choice("batch_size", [64, 128, 256]),
        }

    def serving_contract(self, model: Any) -> dict[str, Any]:
        return {"inputs": {"transactions": ("float32", (None, None, len(FEATURES)))},
                "outputs": {"fraud_probability": ("float32", (None,))}}
