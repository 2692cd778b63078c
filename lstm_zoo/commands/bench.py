"""``lstm-zoo bench layer``: throughput of the LSTM layer paths vs keras.layers.LSTM."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command."""
    p = subparsers.add_parser(
        "bench",
        help="benchmark the LSTM layer",
        description=(
            "Time lstm_zoo's LSTM paths against keras.layers.LSTM (and PyTorch nn.LSTM if "
            "torch is importable): inference and forward+backward, interleaved in one "
            "process, median of REPEATS runs."
        ),
    )
    p.add_argument("what", choices=["layer"], help="what to benchmark")
    p.add_argument("--batch", "-B", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--steps", "-T", type=int, default=100, help="timesteps (default 100)")
    p.add_argument("--input-dim", "-I", type=int, default=64, help="input features (default 64)")
    p.add_argument("--units", "-H", type=int, default=256, help="LSTM units (default 256)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per contender (>=5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument(
        "--paths",
        default="fused,generic",
        help=(
            "comma-separated lstm_zoo paths to time (default fused,generic); fused/N = the "
            "fused path with N batch shards (fused_shards=N); flags +bf16 (bfloat16 in-loop "
            "matmuls), +xla / +noxla (fused_jit), e.g. fused,fused/1,fused+bf16+noxla"
        ),
    )
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if importable")
    p.add_argument("--dtype", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")
    p.add_argument("--threads", type=int, default=None, help="TF/torch thread-pool sizes")
    p.add_argument("--intra-threads", type=int, default=None, help="TF intra-op pool size only")
    p.add_argument("--inter-threads", type=int, default=None, help="TF inter-op pool size only")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.repeats < 5:
        raise ValueError(f"--repeats must be at least 5 (a median of fewer is noise), got {args.repeats}.")
    paths = tuple(p for p in args.paths.split(",") if p)
    from lstm_zoo.bench.layer import parse_path_spec, run

    for spec in paths:
        parse_path_spec(spec)  # a clear error before minutes of warm-up

    run(
        batch=args.batch,
        steps=args.steps,
        input_dim=args.input_dim,
        units=args.units,
        repeats=args.repeats,
        warmup=args.warmup,
        paths=paths,
        torch=not args.no_torch,
        dtype_policy=args.dtype,
        threads=args.threads,
        intra_threads=args.intra_threads,
        inter_threads=args.inter_threads,
    )
    return 0
