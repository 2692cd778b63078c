"""Training and validation batches for data-parallel training (:mod:`lstm_zoo.training.distributed.loop`).

Two kinds of recipe data are supported: the recipe's own ``tf.data`` pipeline
(:meth:`lstm_zoo.recipe.Recipe.batches`, for bucketed/padded/ragged data such as translation
and speech), or in-memory ``(x, y)`` / ``(x, y, sample_weight)`` splits of arrays or dicts of
arrays (weather, finance, fraud).  Anything else is refused with a clear error.
"""

from __future__ import annotations

from typing import Any

from lstm_zoo.training.distributed.config import DistributedConfigError


def training_input(recipe: Any, loaded: Any, strategy: Any, config: Any, global_batch: int,
                    seed: int) -> tuple[str, Any, int, Any]:
    """(kind, distributed iterator over training batches, steps per epoch, a function
    returning a fresh iterable of validation batches).

    A recipe whose :meth:`~lstm_zoo.recipe.Recipe.batches` returns a ``tf.data.Dataset`` (its
    own pipeline: bucketing, padding ...) is read through
    ``strategy.distribute_datasets_from_function``: every worker builds the pipeline with the
    per-worker batch size, repeats it and keeps every N-th batch (``shard``; the pipelines are
    seeded identically, so the workers read disjoint batches).  In-memory ``(x, y)`` or
    ``(x, y, sample_weight)`` splits are shuffled, batched by the global batch and split
    between workers by ``experimental_distribute_dataset`` (auto-shard policy DATA).
    """
    import tensorflow as tf

    per_replica = max(1, global_batch // strategy.num_replicas_in_sync)
    # built once: a recipe's pipeline may hold its whole training split as a constant
    # (speech: every waveform), so the probe is the dataset the workers read
    pipeline = recipe.batches(loaded, "train", per_replica)
    if pipeline is not None:
        n_train = _num_examples(loaded, "train")
        if config.steps_per_epoch:
            steps = config.steps_per_epoch
        elif n_train:
            steps = max(1, -(-n_train // global_batch))  # one pass over the training split
        else:
            raise DistributedConfigError(
                f"cannot tell how many training examples recipe {recipe.name!r} has (its train "
                "split is no tuple and its data info has no n_train); pass "
                "--hparam steps_per_epoch=N")

        def dataset_fn(context: Any) -> Any:
            size = context.get_per_replica_batch_size(global_batch)
            dataset = pipeline if size == per_replica else recipe.batches(loaded, "train", size)
            return dataset.repeat().shard(context.num_input_pipelines, context.input_pipeline_id)

        iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
        return ("recipe tf.data pipeline", iterator, steps,
                lambda: recipe.batches(loaded, "val", config.batch_size))

    train = _arrays(loaded.train, "train")
    val = _arrays(loaded.val, "validation")
    n_train = len(_first_array(train[1]))
    steps = max(1, n_train // global_batch)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(n_train, seed=seed)
    dataset = dataset.repeat().batch(global_batch, drop_remainder=True)
    ds_options = tf.data.Options()
    ds_options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(dataset.with_options(ds_options)))
    n_val = len(_first_array(val[1]))

    def val_batches() -> Any:
        for start in range(0, n_val, 256):
            yield tuple(_slice(part, start, start + 256) for part in val)

    kind = "in-memory arrays" + (" with sample weights" if len(train) == 3 else "")
    return kind, iterator, steps, val_batches


def _arrays(split: Any, what: str) -> tuple[Any, ...]:
    """An in-memory split as ``(x, y)`` or ``(x, y, sample_weight)``; anything else is a clear
    error (a recipe with another kind of split implements ``Recipe.batches``)."""
    if hasattr(split, "element_spec"):
        raise DistributedConfigError(
            f"this recipe's {what} split is a tf.data.Dataset whose batch size --distributed "
            "cannot set; the recipe must implement Recipe.batches(data, split, batch_size) "
            "returning its pipeline for a given batch size (see docs/distributed.md)")
    if not isinstance(split, tuple) or len(split) not in (2, 3):
        kind = f"a {len(split)}-tuple" if isinstance(split, tuple) else f"a {type(split).__name__}"
        raise DistributedConfigError(
            f"--distributed trains from in-memory (x, y) or (x, y, sample_weight) arrays, or "
            f"from the recipe's Recipe.batches() pipeline; this recipe's {what} split is {kind} "
            "and the recipe has no batches() (see docs/distributed.md)")
    return split


def _first_array(value: Any) -> Any:
    """The first array of a target structure (an array, a dict or tuple of arrays, a list)."""
    if isinstance(value, dict):
        return next(iter(value.values()))
    return value[0] if isinstance(value, tuple) else value


def _num_examples(loaded: Any, split: str) -> int | None:
    """Examples in ``split``: the length of an in-memory split, else ``info["n_<split>"]``."""
    value = getattr(loaded, split)
    if isinstance(value, tuple) and len(value) in (2, 3):
        return len(_first_array(value[1]))
    count = loaded.info.get(f"n_{split}")
    return int(count) if count else None


def unpack(batch: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight or None)`` of one batch (Keras's ``unpack_x_y_sample_weight``)."""
    if isinstance(batch, tuple) and len(batch) == 3:
        return batch
    if isinstance(batch, tuple) and len(batch) == 2:
        return batch[0], batch[1], None
    raise DistributedConfigError(
        f"a training batch must be (x, y) or (x, y, sample_weight), got {type(batch).__name__}"
        + (f" of {len(batch)}" if isinstance(batch, tuple) else ""))


def _slice(x: Any, start: int, stop: int) -> Any:
    if isinstance(x, dict):
        return {k: v[start:stop] for k, v in x.items()}
    return x[start:stop]
