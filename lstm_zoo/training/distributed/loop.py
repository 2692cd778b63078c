"""Data-parallel training of one recipe's model across processes or machines.

``tf.distribute.MultiWorkerMirroredStrategy`` reads the cluster from ``TF_CONFIG`` (every
process gets the same ``cluster`` and its own ``task``).  Each step, every worker trains on its
shard of the global batch and the gradients are all-reduced, so all workers hold identical
weights.  With Keras 3.15, ``model.fit`` under this strategy fails (``ValueError: Attempt to
convert a value (PerReplica...``, keras-team/keras#20585), so :func:`train_distributed` uses a
custom loop with ``strategy.run`` — measured to work on CPU (two processes, identical weights).

The loop keeps the recipe's pieces: its data, model, optimizer settings (through
``Recipe.compile``: Adam, clipnorm, learning rate), compiled loss and ``TrainConfig`` (epochs,
batch size per worker, steps per epoch, early stopping on the validation loss with the best
weights restored, halving the learning rate on a plateau).

* Data (:mod:`lstm_zoo.training.distributed.input`): the recipe's own ``tf.data`` pipeline when it
  implements :meth:`~lstm_zoo.recipe.Recipe.batches` (translation, speech), else in-memory
  ``(x, y)`` or ``(x, y, sample_weight)`` splits (weather, finance, fraud).
* Loss (:mod:`lstm_zoo.training.distributed.losses`): the model's compiled loss — every output's loss
  times its ``loss_weights`` entry, sample weights applied per example — split into sums and
  counts; the counts are all-reduced so each step's loss is the mean over the *global* batch
  (examples, or tokens for a token-averaged loss), and the summed gradients of N workers are
  the gradient of one worker on the global batch.
* Clipping: Keras 3 clips each replica's gradient before summing them, which is not what one
  worker on the global batch does; the loop sums the gradients itself, clips the sum with the
  optimizer's settings (``clipnorm``/``global_clipnorm``/``clipvalue``) and gives the optimizer
  (its own clipping switched off while training) 1/N of it per replica, which its all-reduce
  adds back up.  Measured: two workers with batch 8 end with the weights of one worker with
  batch 16 (``tests/tuning/test_distributed_recipes.py``).

The validation loss (the same compiled loss, summed over the whole validation split and divided
by its total count) is computed on every worker on the full split (identical weights, identical
data), so every worker takes the same early-stopping decision without extra communication.

Outputs: the chief (task ``chief``, or ``worker`` 0 when there is no chief) writes
``model.keras`` and ``metrics.json`` (test metrics of the saved model, evaluated outside the
strategy) into ``out_dir``; every other worker writes its copy into ``out_dir/worker-N``.
After every epoch each worker saves its weights (``backup/``); restarting all workers with
the same ``out_dir`` resumes from the last epoch every worker finished (optimizer moments
restart from zero).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.training.distributed.config import is_chief, read_tf_config
from lstm_zoo.training.distributed.input import training_input, unpack
from lstm_zoo.training.distributed.losses import combine, compiled_loss_terms, loss_sums
from lstm_zoo.training.driver import load_model, resolve_recipe, split_hparams, versions

BACKUP_DIR = "backup"


def train_distributed(
    recipe: Any,
    data: str | Path | None = None,
    *,
    out_dir: str | Path = "runs/train",
    seed: int = 0,
    epochs: int | None = None,
    hparams: dict[str, Any] | None = None,
    timeout_seconds: float = 300.0,
    verbose: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Train ``recipe`` data-parallel over the ``TF_CONFIG`` cluster; returns the run record.

    ``hparams`` mixes ``TrainConfig`` fields (``batch_size`` is per worker) and model builder
    arguments.  ``timeout_seconds`` bounds every collective operation, so a dead peer is an
    error rather than a hang.
    """
    tf_config = read_tf_config()
    import keras
    import numpy as np
    import tensorflow as tf


    recipe = resolve_recipe(recipe)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=timeout_seconds
        )
    )
    chief = is_chief(tf_config)
    out_dir = Path(out_dir)
    my_dir = out_dir if chief else out_dir / f"worker-{tf_config['task']['index']}"
    my_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)

    config_changes, model_hparams = split_hparams(recipe, dict(hparams or {}))
    config = recipe.train_config.replace(**config_changes, epochs=epochs)
    loaded = recipe.load(data, seed=seed, **options)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    inputs_kind, iterator, steps, val_batches = training_input(
        recipe, loaded, strategy, config, global_batch, seed)

    with strategy.scope():
        model = recipe.build_model(loaded, **model_hparams)
        recipe.compile(model, config)
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        x0, y0, w0 = unpack(next(iter(val_batches())))
        terms = compiled_loss_terms(model, y0, model(x0, training=False), w0)

    def step_fn(batch: Any) -> Any:
        inputs, targets, weights = unpack(batch)
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            sums = loss_sums(terms, targets, predictions, weights)
            local = [count for _, count in sums if count is not None]
            reduced = iter(tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, local) if local else [])
            normalisers = [None if count is None else tf.stop_gradient(next(reduced))
                           for _, count in sums]
            loss = combine(terms, sums, normalisers)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        pairs = [(g, v) for g, v in zip(tape.gradient(loss, model.trainable_variables),
                                         model.trainable_variables) if g is not None]
        # Keras clips each replica's gradient before its own all-reduce (sum); clipping must
        # see the summed gradient, as one worker on the global batch would.  So: sum here,
        # clip, and hand the optimizer (clipping off) 1/N of it, which its all-reduce sums
        # back to the clipped total.
        # (embedding gradients come as IndexedSlices: made dense, simple and small here)
        summed = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [tf.convert_to_tensor(g) for g, _ in pairs])
        clipped = clip(summed)
        optimizer.apply_gradients([(g / replicas, v) for g, (_, v) in zip(clipped, pairs)])
        return loss

    @tf.function
    def train_step(it: Any) -> Any:
        per_replica = strategy.run(step_fn, args=(next(it),))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def val_loss() -> float:
        """The compiled loss over the whole validation split (sums and counts added over
        batches), on this worker alone: every worker gets the same value."""
        numerators = [0.0] * len(terms)
        counts: list[Any] = [0.0] * len(terms)
        for batch in val_batches():
            xb, yb, wb = unpack(batch)
            sums = loss_sums(terms, yb, model(xb, training=False), wb)
            for k, (numerator, count) in enumerate(sums):
                numerators[k] += float(numerator)
                counts[k] = None if count is None else counts[k] + float(count)
        return float(combine(terms, [(tf.constant(n), None) for n in numerators],
                             [None if c is None else tf.constant(c) for c in counts]))

    clip = _take_over_clipping(optimizer)
    backup = my_dir / BACKUP_DIR
    state = _load_backup(model, backup)
    history: list[dict[str, float]] = state.get("history", [])
    best_val = state.get("best_val", float("inf"))
    best_weights = model.get_weights() if state else None
    since_best = state.get("since_best", 0)
    _set_lr(optimizer, state.get("learning_rate"))
    started = time.perf_counter()
    first_epoch = state.get("epoch", -1) + 1
    for epoch in range(first_epoch, config.epochs):
        losses = [float(train_step(iterator)) for _ in range(steps)]
        current = val_loss()
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_loss": current})
        if verbose:
            print(f"[distributed] epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f} "
                  f"val_loss {current:.4f} ({steps} steps x {global_batch} examples, "
                  f"{replicas} replicas)", flush=True)
        if current < best_val:
            best_val, best_weights, since_best = current, model.get_weights(), 0
        else:
            since_best += 1
            if config.lr_schedule == "plateau" and since_best % max(1, config.patience // 2) == 0:
                _set_lr(optimizer, _get_lr(optimizer) * 0.5)
        _save_backup(model, backup, {"epoch": epoch, "best_val": best_val, "history": history,
                                     "since_best": since_best,
                                     "learning_rate": _get_lr(optimizer)})
        if since_best >= config.patience:
            break
    seconds = time.perf_counter() - started
    clip.restore()  # the saved optimizer keeps the recipe's settings
    if best_weights is not None:
        model.set_weights(best_weights)

    with atomic_path(my_dir / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    record = {
        "recipe": recipe.name,
        "model": recipe.default_model,
        "distributed": {"strategy": "MultiWorkerMirroredStrategy (custom loop)",
                        "task": tf_config["task"], "workers": replicas, "input": inputs_kind,
                        "global_batch_size": global_batch, "steps_per_epoch": steps},
        "data": str(data) if data is not None else "embedded default",
        "data_info": loaded.info,
        "seed": seed,
        "train_config": dataclasses.asdict(config),
        "hparams": model_hparams,
        "history": history,
        "train_seconds": round(seconds, 1),
        "versions": versions(),
    }
    if chief:
        record["test"] = recipe.evaluate(load_model(my_dir / "model.keras"), loaded)
        atomic_write_json(my_dir / "metrics.json", record)
    return record


class _Clipping:
    """The optimizer's gradient clipping (clipnorm per tensor, global_clipnorm, or clipvalue,
    as Keras applies them), applied by the training step to the all-reduced gradient."""

    def __init__(self, optimizer: Any):
        self.optimizer = optimizer
        self.settings = {k: getattr(optimizer, k, None)
                         for k in ("clipnorm", "global_clipnorm", "clipvalue")}

    def __call__(self, grads: list[Any]) -> list[Any]:
        import tensorflow as tf

        clipnorm, global_clipnorm, clipvalue = self.settings.values()
        if clipnorm and clipnorm > 0:
            return [tf.clip_by_norm(g, clipnorm) for g in grads]
        if global_clipnorm and global_clipnorm > 0:
            return tf.clip_by_global_norm(grads, global_clipnorm)[0]
        if clipvalue and clipvalue > 0:
            return [tf.clip_by_value(g, -clipvalue, clipvalue) for g in grads]
        return list(grads)

    def restore(self) -> None:
        for key, value in self.settings.items():
            setattr(self.optimizer, key, value)


def _take_over_clipping(optimizer: Any) -> _Clipping:
    """Switch the optimizer's own clipping off (it would clip per replica) and return it."""
    clipping = _Clipping(optimizer)
    for key in clipping.settings:
        setattr(optimizer, key, None)
    return clipping


def _get_lr(optimizer: Any) -> float | None:
    try:
        return float(optimizer.learning_rate.numpy())
    except (AttributeError, TypeError, ValueError):
        return None


def _set_lr(optimizer: Any, value: float | None) -> None:
    if value is not None and hasattr(optimizer.learning_rate, "assign"):
        optimizer.learning_rate.assign(value)


def _save_backup(model: Any, backup: Path, state: dict[str, Any]) -> None:
    backup.mkdir(parents=True, exist_ok=True)
    with atomic_path(backup / "model.weights.h5", suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
    atomic_write_json(backup / "state.json", state)


def _load_backup(model: Any, backup: Path) -> dict[str, Any]:
    state_file, weights = backup / "state.json", backup / "model.weights.h5"
    if not (state_file.exists() and weights.exists()):
        return {}
    model.load_weights(weights)
    state = json.loads(state_file.read_text())
    print(f"[distributed] resuming after epoch {state['epoch'] + 1} from {backup}", flush=True)
    return state
