"""Throughput benchmark of the LSTM layer paths vs ``keras.layers.LSTM`` (and PyTorch if present).

Used by ``benchmarks/lstm_layer.py`` and ``lstm-zoo bench layer``.  All contenders run
interleaved in one process (round-robin, so machine-load drift hits each equally); each figure
is the median of ``repeats`` timed runs after warm-up.  FLOPs count the gate matmuls only:
2·4H·(I+H) per sample-step forward, ×3 for forward+backward.  A large square matmul gives the
machine's practical GFLOP/s ceiling.  Never used in tests (timing is not a test).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    """Timings (seconds) of one contender in one mode."""

    name: str
    mode: str  # "inference" | "training"
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds (all threads)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_times)


_SPEC = re.compile(r"(?P<path>fused|generic)(?:/(?P<shards>[1-9][0-9]*))?(?P<flags>(?:\+\w+)*)")
_FLAGS = {
    "bf16": ("fused_bf16_matmul", True),
    "xla": ("fused_jit", True),
    "noxla": ("fused_jit", False),
}


def parse_path_spec(spec: str) -> tuple[str, dict]:
    """A contender spec -> (path, layer attributes to set).

    ``"fused"`` | ``"generic"``; the fused path takes ``/N`` (``fused_shards=N`` batch
    shards) and flags ``+bf16`` (``fused_bf16_matmul``), ``+xla`` / ``+noxla`` (``fused_jit``
    True/False for every call), e.g. ``"fused/1+bf16+noxla"``.
    """
    m = _SPEC.fullmatch(spec)
    flags = [f for f in (m["flags"] if m else "").split("+") if f]
    if (
        m is None
        or any(f not in _FLAGS for f in flags)
        or len({_FLAGS[f][0] for f in flags}) < len(flags)
        or (m["path"] == "generic" and (m["shards"] or flags))
    ):
        raise ValueError(
            f"Unknown path spec {spec!r}: expected 'generic' or 'fused' with an optional '/N' "
            "(N >= 1 batch shards) and flags '+bf16', '+xla' or '+noxla', e.g. 'fused/1+bf16'."
        )
    attributes = dict(_FLAGS[f] for f in flags)
    if m["shards"]:
        attributes["fused_shards"] = int(m["shards"])
    return m["path"], attributes


def _tf_contenders(batch, steps, input_dim, units, paths, dtype_policy):
    import keras
    import numpy as np
    import tensorflow as tf

    from lstm_zoo.layers import LSTM

    x = tf.constant(np.random.RandomState(0).randn(batch, steps, input_dim).astype("float32"))
    layers = {"keras.layers.LSTM": keras.layers.LSTM(units, dtype=dtype_policy)}
    for spec in paths:
        path, attributes = parse_path_spec(spec)
        layer = LSTM(units, implementation=path, dtype=dtype_policy)
        for key, value in attributes.items():
            setattr(layer, key, value)
        layers[f"lstm_zoo {spec}"] = layer
    contenders = {}
    for name, layer in layers.items():
        layer(x)

        @tf.function
        def infer(x=x, layer=layer):
            return layer(x, training=False)

        @tf.function
        def train(x=x, layer=layer):
            with tf.GradientTape() as tape:
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)
            return tape.gradient(loss, layer.trainable_weights)

        contenders[name] = {
            "inference": lambda f=infer: f().numpy(),
            "training": lambda f=train: [g.numpy() for g in f()],
        }
    return contenders, _deviations(layers, contenders)


def _deviations(layers, contenders) -> dict[str, tuple[float, float]]:
    """For each lstm_zoo layer given keras' weights: (max |output - keras output|, relative
    L2 error of the weight gradients vs keras')."""
    import numpy as np

    reference = layers["keras.layers.LSTM"]
    ref_out = contenders["keras.layers.LSTM"]["inference"]()
    ref_grads = contenders["keras.layers.LSTM"]["training"]()
    deviations = {}
    for name, layer in layers.items():
        if layer is reference:
            continue
        layer.set_weights(reference.get_weights())
        out = contenders[name]["inference"]()
        grads = contenders[name]["training"]()
        rel = max(
            float(np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30))
            for g, r in zip(grads, ref_grads)
        )
        deviations[name] = (float(np.max(np.abs(out.astype("float32") - ref_out))), rel)
    return deviations


def _torch_contender(batch, steps, input_dim, units, threads):
    try:
        import torch
    except ImportError:
        return {}
    if threads:
        torch.set_num_threads(threads)
    lstm = torch.nn.LSTM(input_dim, units, batch_first=True)
    x = torch.randn(batch, steps, input_dim)

    def infer():
        with torch.no_grad():
            lstm(x)[0].sum().item()

    def train():
        lstm.zero_grad()
        lstm(x)[0].pow(2).sum().backward()

    return {f"torch {torch.__version__} nn.LSTM": {"inference": infer, "training": train}}


def _round_range(base_times: list[float], times: list[float]) -> str:
    """'lo-hi' of the per-round wall-clock ratios keras/contender (rounds are interleaved, so
    each ratio compares runs made under about the same machine load)."""
    ratios = [b / t for b, t in zip(base_times, times)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a float32 n×n·n×n matmul in TensorFlow (median of ``repeats``)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    f = tf.function(lambda: tf.matmul(a, a))
    f().numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f().numpy()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def run(
    batch: int = 64,
    steps: int = 100,
    input_dim: int = 64,
    units: int = 256,
    repeats: int = 5,
    warmup: int = 2,
    paths: tuple[str, ...] = ("fused", "generic"),
    torch: bool = True,
    dtype_policy: str = "float32",
    threads: int | None = None,
    intra_threads: int | None = None,
    inter_threads: int | None = None,
    print_fn: Callable[[str], None] = print,
) -> list[Result]:
    """Time every contender; print a table; return the results.

    ``paths``: lstm_zoo CPU paths to time (see ``parse_path_spec``): ``"fused"`` |
    ``"generic"``; ``"fused/N"`` is the fused path with ``fused_shards=N`` (N batch slices run
    as concurrent loops; plain ``"fused"`` uses the automatic choice); ``"+bf16"`` sets
    ``fused_bf16_matmul``, ``"+xla"``/``"+noxla"`` ``fused_jit``.  ``threads``: TF intra-
    and inter-op pool sizes (and torch's), default TF's own choice; ``intra_threads`` /
    ``inter_threads`` override one TF pool each.
    """
    import tensorflow as tf

    intra_threads = intra_threads or threads
    inter_threads = inter_threads or threads
    if intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(intra_threads)
    if inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(inter_threads)
    contenders, deviations = _tf_contenders(batch, steps, input_dim, units, paths, dtype_policy)
    if torch:
        contenders.update(_torch_contender(batch, steps, input_dim, units, threads))
    results = {(n, m): Result(n, m) for n in contenders for m in ("inference", "training")}
    for _ in range(warmup):
        for name, fns in contenders.items():
            for fn in fns.values():
                fn()
    for _ in range(repeats):  # interleaved: every contender once per round
        for name, fns in contenders.items():
            for mode, fn in fns.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                results[(name, mode)].times.append(time.perf_counter() - t0)
                results[(name, mode)].cpu_times.append(time.process_time() - c0)

    flops_fwd = 2 * 4 * units * (input_dim + units) * batch * steps
    print_fn(
        f"LSTM B={batch} T={steps} I={input_dim} H={units} {dtype_policy}, "
        f"median of {repeats} interleaved runs (after {warmup} warm-up), TF threads intra-op "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, inter-op "
        f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'}"
    )
    print_fn(
        f"{'contender':<30} {'mode':<10} {'ms':>8} {'seq/s':>7} {'GFLOP/s':>8} {'vs keras':>8}"
        f" {'cpu ms':>8} {'cpu vs keras':>12} {'per-round range':>16}"
    )
    for mode in ("inference", "training"):
        base = results[("keras.layers.LSTM", mode)]
        for name in contenders:
            r = results[(name, mode)]
            flops = flops_fwd * (3 if mode == "training" else 1)
            print_fn(
                f"{name:<30} {mode:<10} {1e3 * r.median:8.1f} {batch / r.median:7.0f} "
                f"{flops / r.median / 1e9:8.1f} {base.median / r.median:7.2f}x "
                f"{1e3 * r.cpu_median:8.1f} {base.cpu_median / r.cpu_median:11.2f}x "
                f"{_round_range(base.times, r.times):>16}"
            )
    print_fn(
        "(ms/seq/s/GFLOP/s: wall clock; cpu ms: process CPU time, all threads - less sensitive "
        "to other processes' load, but blind to idle cores; per-round range: lowest and highest "
        "wall-clock ratio to keras over the interleaved rounds)"
    )
    for name, (out_dev, grad_dev) in deviations.items():
        print_fn(
            f"{name}: max |output - keras| {out_dev:.1e}, weight-gradient relative error "
            f"{grad_dev:.1e} (same weights)"
        )
    print_fn(f"ceiling: 2048² float32 matmul {matmul_gflops():.1f} GFLOP/s")
    return list(results.values())
