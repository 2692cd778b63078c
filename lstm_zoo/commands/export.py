"""``lstm-zoo export``: write a recipe's model as a TF Serving SavedModel (``OUT/NAME/VERSION``)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    p = subparsers.add_parser(
        "export",
        help="export a model for TF Serving",
        description="Export a recipe's trained model as a TF Serving SavedModel into "
        "OUT/NAME/VERSION (next free version unless --version), with pre- and post-processing "
        "in the graph, named outputs, warmup requests and a manifest in assets.extra/. "
        "Serve it with: tensorflow_model_server --model_name=NAME --model_base_path=OUT/NAME",
    )
    p.add_argument("name", nargs="?", help="recipe name (weather, finance, fraud, ...)")
    p.add_argument("--out", required=True, help="base directory TF Serving watches")
    p.add_argument(
        "--model",
        help="a .keras file or a training run directory (default: the pulled pretrained model)",
    )
    p.add_argument("--version", type=int, help="version number (default: next free integer)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --version")
    p.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="cpu (default): portable, no cuDNN op, runs on any server; gpu: cuDNN kernels, "
        "needs a GPU server (and a GPU here)",
    )
    p.add_argument(
        "--data",
        help="data the recipe loads for sample inputs (warmup and --verify); default: its "
        "embedded default data",
    )
    p.add_argument(
        "--synthetic-samples",
        action="store_true",
        help="do not load data: warm up and verify on inputs made from the signature contract",
    )
    p.add_argument("--no-warmup", action="store_true", help="do not write warmup requests")
    p.add_argument(
        "--verify",
        action="store_true",
        help="load the export in a TensorFlow-only process and compare it with the Keras model",
    )
    p.add_argument(
        "--models-config",
        action="store_true",
        help="(also) write OUT/models.config serving every model under OUT; alone (no NAME) it "
        "only writes the config",
    )
    p.add_argument(
        "--format",
        choices=("savedmodel", "tflite", "onnx"),
        default="savedmodel",
        help="savedmodel (default, for TF Serving); tflite or onnx also write a converted file "
        "beside the export where the recipe converts",
    )
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    if args.name is None and not args.models_config:
        from lstm_zoo.errors import LstmZooError

        raise LstmZooError("NAME (a recipe) is required unless --models-config is given alone")
    if args.name is not None:
        from lstm_zoo.serving.savedmodel import export

        model = args.model
        if model is None:  # no --model: the published pretrained model of that name
            from lstm_zoo.hub.pretrained import load_pretrained

            model = load_pretrained(args.name)
        result = export(
            args.name,
            args.out,
            model=model,
            version=args.version,
            force=args.force,
            device=args.device,
            data=None if args.synthetic_samples else _data_arg(args),
            warmup=not args.no_warmup,
            verify=args.verify,
        )
        print(f"wrote {result.path} (version {result.version}, device {args.device})")
        if args.device == "gpu":
            print("note: this export holds cuDNN kernels and needs a TF Serving GPU build on a "
                  "machine with a CUDA GPU; export with --device cpu for any server")
        print(json.dumps(result.manifest["signature"], indent=2))
        if result.verification:
            v = result.verification
            print(
                f"verified in a TensorFlow-only process: max |diff| {v['max_abs_diff']} "
                f"(atol {v['atol']}), {v['warmup_requests_replayed']} warmup requests replayed, "
                "saved_model_cli show --all ok"
            )
        if args.format != "savedmodel":
            from lstm_zoo.serving.formats import ConversionError, convert

            try:
                converted = convert(result.path, args.format)
            except ConversionError as exc:
                raise ConversionError(
                    f"the SavedModel {result.path} was written, but {exc}"
                ) from None
            print(f"wrote {converted.path} ({args.format}; {converted.note})")
        print(
            f"serve: tensorflow_model_server --rest_api_port=8501 --model_name={result.name} "
            f"--model_base_path={result.model_base_path.resolve()}"
        )
    if args.models_config:
        from lstm_zoo.serving.savedmodel import write_models_config

        path = write_models_config(args.out)
        print(f"wrote {path}")
        print(f"serve: tensorflow_model_server --rest_api_port=8501 --model_config_file={path}")
    return 0


def _data_arg(args: argparse.Namespace) -> object:
    """``--data`` path, or the recipe's embedded default (loaded through the recipe)."""
    from lstm_zoo.serving.savedmodel import EMBEDDED_DEFAULT

    return args.data if args.data is not None else EMBEDDED_DEFAULT
