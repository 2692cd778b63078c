"""A tiny two-output recipe with loss weights and sample weights for ``--distributed`` tests,
and a CLI entry: ``python tiny_distributed_recipe.py train tiny-multi ...`` registers it, then
runs ``lstm_zoo.cli.main`` exactly as ``lstm-zoo`` would.

Output ``total`` is ``[batch]`` (as finance-lstm's outputs: Keras's "mse" then averages over
the batch axis), output ``sign`` is ``[batch, 1]``; the training split carries sample weights
(as fraud's) and the losses are weighted in ``compile`` (as finance's).
"""

from __future__ import annotations

import sys

import keras
import numpy as np

from lstm_zoo import registry
from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig

NAME = "tiny-multi"
LOSS_WEIGHTS = {"total": 2.0, "sign": 0.5}


class TinyMultiRecipe(Recipe):
    name = NAME
    task = "testing"
    description = "tiny two-output recipe with sample weights"
    default_model = "tiny-multi-model"
    train_config = TrainConfig(epochs=2, batch_size=8, patience=5, lr_schedule="constant",
                               learning_rate=1e-2)

    def load(self, data=None, *, seed=0, **options):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(48, 4)).astype("float32")
        total = x.sum(axis=1).astype("float32")
        y = {"total": total, "sign": (total > 0).astype("float32")[:, None]}
        w = np.where(total > 0, 3.0, 0.5).astype("float32")
        part = lambda d, s: {k: v[s] for k, v in d.items()}  # noqa: E731
        return RecipeData(train=(x[:32], part(y, slice(0, 32)), w[:32]),
                          val=(x[32:40], part(y, slice(32, 40))),
                          test=(x[40:], part(y, slice(40, None))), info={"rows": 48})

    def build_model(self, data, units: int = 6):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(units, activation="tanh")(inputs)
        total = keras.layers.Reshape((), name="total")(keras.layers.Dense(1)(hidden))
        sign = keras.layers.Dense(1, activation="sigmoid", name="sign")(hidden)
        return keras.Model(inputs, {"total": total, "sign": sign})

    def loss(self):
        return {"total": "mse", "sign": "binary_crossentropy"}

    def compile(self, model, config):
        super().compile(model, config)
        model.compile(optimizer=model.optimizer, loss=self.loss(), loss_weights=LOSS_WEIGHTS)

    def evaluate(self, model, data):
        x, y = data.test
        pred = model.predict(x, verbose=0)
        return {"mae_total": float(np.abs(pred["total"] - y["total"]).mean())}


def register() -> None:
    registry.load_plugins()
    if NAME not in registry._recipes:
        registry.register_recipe(TinyMultiRecipe)


if __name__ == "__main__":
    register()
    from lstm_zoo import cli

    sys.exit(cli.main(sys.argv[1:]))
