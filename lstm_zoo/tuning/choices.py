"""The names a sweep accepts, importable without keras-tuner or TensorFlow (``lstm-zoo tune
--help`` lists them)."""

TUNERS = ("random", "hyperband", "bayesian")  # keras-tuner search algorithms
ROLES = ("local", "chief", "worker")  # one process, or keras-tuner's chief/worker protocol
