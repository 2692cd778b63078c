"""The recipe protocol: everything one task needs, in one class a plugin can copy.

A recipe bundles

* data loading — an embedded default that works on a fresh machine (data shipped inside a pip
  dependency, or generated), plus loaders for real files a user points at (``--data PATH``);
* preprocessing fitted on the training split only;
* the registered model(s) it trains, built from :class:`lstm_zoo.layers.LSTM`;
* training settings (:class:`TrainConfig`: clipping, early stopping, LR schedule ...);
* evaluation next to naive baselines, and plots;
* a hyperparameter search space (used by :mod:`lstm_zoo.tuning.sweep`);
* its serving contract (used by :mod:`lstm_zoo.serving.savedmodel`).

The generic driver in :mod:`lstm_zoo.training.driver` runs any recipe; a recipe only overrides what
its task needs.  Register a recipe with ``@register_recipe("name", task=..., description=...)``
on the class, in a module loaded through the ``lstm_zoo.plugins`` entry-point group.

Models carry their own preprocessing (normalisation, vocabularies) as layers, so a saved
``.keras`` file and an exported SavedModel take the same raw inputs the recipe reads.
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

Split = Any  # a tf.data.Dataset yielding (x, y), or an (x, y) tuple of arrays / dicts of arrays


@dataclasses.dataclass
class TrainConfig:
    """How a recipe's model is trained; every field can be overridden from the CLI or a sweep."""

    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    clipnorm: float | None = 1.0  # gradient clipping by global norm
    patience: int = 5  # early stopping on the validation loss
    lr_schedule: str = "plateau"  # "plateau" (ReduceLROnPlateau) | "cosine" | "constant"
    monitor: str = "val_loss"
    steps_per_epoch: int | None = None  # cap (for huge or streaming datasets)
    # weights kept as an exponential moving average with this momentum (Keras' optimizer
    # ``use_ema``) and swapped in when training ends; None trains without one
    ema_momentum: float | None = None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied; unknown keys raise a clear ``TypeError``."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(
                f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass
class RecipeData:
    """A recipe's data after loading and preprocessing, split chronologically or by speaker.

    ``model_args`` are builder arguments derived from the data (input width, horizon,
    normalisation statistics fitted on train, vocabularies); ``info`` is provenance and sizes,
    recorded in ``metrics.json`` and manifests.  ``extras`` holds whatever else the recipe's
    evaluation, plots or serving contract need (raw test arrays, timestamps ...).
    """

    train: Split
    val: Split
    test: Split
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Option:
    """One recipe option: a ``--flag`` on the command line and a keyword of ``Recipe.load``.

    Its default is declared once, in the ``load`` signature; the CLI reads it from there (and
    adds it to the help), so the two cannot disagree.  ``type`` parses the flag's text; by
    default the type of the default value.
    """

    flag: str
    help: str
    type: Callable[[str], Any] | None = None

    @property
    def name(self) -> str:
        """The ``load`` keyword (``--val-takes`` -> ``val_takes``)."""
        return self.flag.lstrip("-").replace("-", "_")


class Recipe(abc.ABC):
    """Base class of every recipe.  Subclasses set the class attributes and implement
    :meth:`load` and :meth:`evaluate`; the rest has defaults that suit most tasks."""

    name: ClassVar[str]
    task: ClassVar[str]
    description: ClassVar[str]
    default_model: ClassVar[str]  # the registered model name this recipe trains by default
    data_provenance: ClassVar[str] = ""  # source and licence of the default data
    train_config: ClassVar[TrainConfig] = TrainConfig()
    headline_metric: ClassVar[str] = "loss"  # the metric shown in listings (lower is better ...)
    headline_higher_is_better: ClassVar[bool] = False
    # how ``lstm-zoo ensemble`` combines trained models' outputs: "mean", "log_probs" (class
    # logits: average log-softmax), "stack" (the recipe's evaluation and serving combine the
    # members' stacked outputs, e.g. CTC decoding) or None (models cannot be combined)
    ensemble_combine: ClassVar[str | None] = "mean"
    # recipe options that change only the training split (augmentation, how much training
    # data is built): ensemble members may differ in them, since their validation and test
    # data are the same task either way
    training_only_options: ClassVar[frozenset[str]] = frozenset()

    # the recipe's data options (``--time-col`` ...): flags of the CLI, keywords of ``load``
    options: ClassVar[tuple[Option, ...]] = ()

    # ---- command line --------------------------------------------------------------------
    def option_defaults(self) -> dict[str, Any]:
        """``{keyword: default}`` of :meth:`load`'s keyword-only options (``seed`` aside)."""
        return {
            p.name: p.default
            for p in inspect.signature(self.load).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name != "seed" and p.default is not p.empty
        }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the recipe's :attr:`options` as flags; their values reach :meth:`load`.

        Each flag's default is the ``load`` keyword's default (a flag ``load`` does not take is
        a programming error, raised here).
        """
        defaults = self.option_defaults()
        for option in self.options:
            if option.name not in defaults:
                raise TypeError(f"recipe {self.name!r}: option {option.flag} has no keyword "
                                f"{option.name!r} with a default in {type(self).__name__}.load")
            default = defaults[option.name]
            kind = option.type or (str if default is None else type(default))
            shown = f"{default:g}" if isinstance(default, float) else default
            text = option.help if default is None else f"{option.help} (default: {shown})"
            parser.add_argument(option.flag, type=kind, default=default, help=text)

    # ---- data -----------------------------------------------------------------------------
    @abc.abstractmethod
    def load(self, data: str | Path | None = None, *, seed: int = 0, **options: Any) -> RecipeData:
        """Load ``data`` (None: the embedded default) and preprocess it into splits.

        Bad input raises :class:`lstm_zoo.errors.DataError` naming the file, column and row.
        """

    # ---- model ----------------------------------------------------------------------------
    def build_model(self, data: RecipeData, **hparams: Any) -> Any:
        """Build the default registered model with data-derived arguments and ``hparams``."""
        from lstm_zoo.registry import get_model

        return get_model(self.default_model, **{**data.model_args, **hparams})

    def loss(self) -> Any:
        """The training loss (anything ``model.compile`` accepts)."""
        return "mse"

    def metrics(self) -> list[Any]:
        """Metrics Keras reports while training."""
        return []

    def compile(self, model: Any, config: TrainConfig) -> None:
        """Compile ``model`` with Adam, gradient clipping and the recipe's loss/metrics."""
        import keras

        learning_rate: Any = config.learning_rate
        if config.lr_schedule == "cosine":
            steps = max(1, (config.steps_per_epoch or 100) * config.epochs)
            learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        ema = {} if config.ema_momentum is None else {"use_ema": True,
                                                        "ema_momentum": config.ema_momentum}
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=config.clipnorm,
                                          **ema)
        model.compile(optimizer=optimizer, loss=self.loss(), metrics=self.metrics())

    def fit(self, model: Any, data: RecipeData, config: TrainConfig, callbacks: list[Any],
            verbose: Any = "auto") -> Any:
        """Train ``model``; returns the Keras ``History``."""
        x, y = _as_xy(data.train)
        val = data.val if not isinstance(data.val, tuple) else tuple(data.val)
        if config.steps_per_epoch:
            x, y = repeating_batches(x, y, batch_size=config.batch_size), None
        return model.fit(
            x,
            y,
            validation_data=val,
            epochs=config.epochs,
            batch_size=config.batch_size if y is not None else None,
            steps_per_epoch=config.steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=y is not None,  # arrays; a tf.data pipeline shuffles itself
        )

    def batches(self, data: RecipeData, split: str, batch_size: int) -> Any | None:
        """``split`` (``"train"``, ``"val"`` or ``"test"``) as the recipe's own ``tf.data``
        pipeline of ``(x, y)`` or ``(x, y, sample_weight)`` batches of ``batch_size`` examples,
        or None (the default) when the split is in-memory arrays any loop can batch itself.

        Recipes whose data needs its own batching (bucketing by length, padding, ragged
        inputs) override it; data-parallel training (:mod:`lstm_zoo.training.distributed.loop`) calls it with
        the per-worker batch size and shards the batches between workers.  The train
        pipeline is shuffled with the load seed (identically in every process) and may
        repeat; val and test pass once, in order.
        """
        return None

    # ---- evaluation -----------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        """Metrics on the test split, next to the naive baselines (a JSON-friendly dict)."""

    def plot(self, model: Any, data: RecipeData, out_dir: Path) -> list[Path]:
        """Write the recipe's PNG plots (forecast vs actual ...) into ``out_dir``."""
        return []

    # ---- sweeps ---------------------------------------------------------------------------
    def search_space(self, hp: Any) -> dict[str, Any]:
        """Hyperparameters for one trial, drawn from a ``keras_tuner.HyperParameters``.

        Keys that are :class:`TrainConfig` fields (``learning_rate``, ``batch_size`` ...) set
        the training configuration; all other keys go to :meth:`build_model`.  Draw every
        value from ``hp`` (values may be derived from drawn ones, e.g. ``units // 2``) so the
        same sweep seed gives the same trials; declare at least one hyperparameter (an empty
        space is an error).  :mod:`lstm_zoo.tuning.sweep` calls this once per trial, plus once
        without a trial to learn the space (``hp`` then returns each hyperparameter's default).
        """
        return {
            "units": hp.Int("units", 16, 128, step=16),
            "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"),
        }

    # ---- serving --------------------------------------------------------------------------
    def serving_contract(self, model: Any) -> Mapping[str, Any] | None:
        """Inputs and outputs of the serving signature of ``model`` (None: not exportable).

        A mapping ``{"inputs": {key: (dtype, shape)}, "outputs": {key: (dtype, shape)}}``
        with ``None`` for the batch and time dimensions; :mod:`lstm_zoo.serving.savedmodel` builds the
        SavedModel signature from it and :meth:`serving_function`.  It takes the model because
        shapes can depend on the data it was trained on (Seattle daily vs Beijing hourly).
        Dtypes are names (``"float32"``, ``"string"`` ...) or ``tf.DType``; keys are what a
        client sends and receives, so name them for the client (``"history"``, not ``"x"``).
        The export checks requests against the shapes in the graph (``tf.ensure_shape``).
        """
        return None

    def serving_function(self, model: Any) -> Any:
        """A function from the contract's raw inputs (dict of tensors) to its outputs (dict).

        The default calls ``model`` on the single input and names its output after the
        contract's single output key; recipes with several outputs or in-graph post-processing
        override it.  It is traced into the SavedModel, so it may use core TensorFlow ops only
        (no Python at serving time, no tensorflow-text).  Lookup tables or other resources it
        creates outside ``model`` must exist before tracing and be listed in a ``trackables``
        attribute of the returned function so the export saves them.
        """
        contract = self.serving_contract(model)
        if contract is None:
            raise NotImplementedError(f"recipe {self.name!r} has no serving contract")
        (in_key,) = contract["inputs"]
        (out_key,) = contract["outputs"]

        def serve(inputs: Mapping[str, Any]) -> dict[str, Any]:
            return {out_key: model(inputs[in_key], training=False)}

        return serve

    def client_inputs(self, table: Any, card: Mapping[str, Any]) -> tuple[dict[str, Any], dict]:
        """The serving inputs a client's table (a CSV path or a pandas DataFrame) stands for,
        for a pretrained model whose manifest is ``card``; plus what the answer needs besides
        the outputs (``"timestamps"`` and ``"targets"`` for a forecast).

        Recipes whose clients hold files (forecasters: the window after the table's last row)
        override it; the default says the recipe takes its raw serving inputs only.
        """
        from lstm_zoo.errors import DataError

        raise DataError(f"recipe {self.name!r} takes its serving inputs directly, not a table; "
                        "pass them as the signature names them")

    def sample_inputs(self, model: Any, data: RecipeData, n: int = 4) -> dict[str, Any]:
        """A few raw inputs matching the serving contract (for verification and warmup).

        The default takes the first ``n`` test inputs (arrays, a dict holding the key, or the
        ``x`` of a ``tf.data.Dataset`` of ``(x, y)``); recipes whose model inputs are not the
        raw client inputs override it.
        """
        contract = self.serving_contract(model)
        if contract is None:
            raise NotImplementedError(f"recipe {self.name!r} has no serving contract")
        (in_key,) = contract["inputs"]
        x, _ = _as_xy(data.test)
        if hasattr(x, "unbatch"):  # a batched tf.data.Dataset of (x, y)
            x = next(iter(x.unbatch().batch(n)))[0]
            x = x.numpy() if hasattr(x, "numpy") else {k: v.numpy() for k, v in x.items()}
        if isinstance(x, Mapping):
            x = x[in_key]
        return {in_key: x[:n]}


def recipe_option_args(options: Mapping[str, Any] | None) -> list[str]:
    """Recipe options (argparse dests) back as command-line flags, for recorded commands
    (a published model's train/evaluate lines, a sweep's retrain line): ``None``/``False``
    are left out, ``True`` is the bare flag, a list repeats the flag."""
    args: list[str] = []
    for dest, value in sorted((options or {}).items()):
        flag = "--" + dest.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def repeating_batches(x: Any, y: Any = None, sample_weight: Any = None, *,
                      batch_size: int = 32, seed: int = 0) -> Any:
    """Training data as an endless ``tf.data`` stream, for ``fit(steps_per_epoch=N)``.

    Keras keeps one iterator across epochs when ``steps_per_epoch`` is set: over a finite
    dataset (or arrays) an epoch that meets the end of the data stops early ("Your input ran
    out of data") and the next starts over, so with N not dividing the number of batches
    every other epoch trained on a few batches only.  Repeated, every epoch is N batches.
    ``x`` a ``tf.data.Dataset`` of batches is repeated as it is; arrays (or dicts of arrays)
    are shuffled again on every pass (as ``fit`` shuffles arrays) and batched.
    """
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        return x.repeat()
    parts = (x,) if y is None else (x, y) if sample_weight is None else (x, y, sample_weight)
    ds = tf.data.Dataset.from_tensor_slices(parts)
    count = int(ds.cardinality())
    ds = ds.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE)


def _as_xy(split: Split) -> tuple[Any, Any]:
    """``(x, y)`` for array splits; ``(dataset, None)`` for a ``tf.data.Dataset``."""
    if isinstance(split, tuple):
        return split[0], split[1]
    return split, None
