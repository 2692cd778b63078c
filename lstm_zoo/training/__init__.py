"""Training any recipe: the driver (:mod:`~lstm_zoo.training.driver`), ensembles of finished
runs (:mod:`~lstm_zoo.training.ensembling`) and data-parallel multi-worker training
(:mod:`~lstm_zoo.training.distributed`).

``train``, ``evaluate`` and ``load_model`` are the public entry points, re-exported here.
"""

from lstm_zoo.training.driver import TrainResult, evaluate, load_model, train

__all__ = ["TrainResult", "evaluate", "load_model", "train"]
