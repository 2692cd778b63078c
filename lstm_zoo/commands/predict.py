"""``lstm-zoo predict``: a pretrained model's answers for what a client has.

WAV files -> transcripts; sentences (or a text file, one per line) -> translations; a CSV
(``--data``) -> the forecast after its last row.  Answers come from the published version's TF
Serving signature (:class:`lstm_zoo.hub.task.PretrainedTask`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` command."""
    p = subparsers.add_parser(
        "predict",
        help="answers of a pretrained model for WAV files, sentences or a CSV",
        description="Run a pretrained model on raw inputs: WAV files (speech), sentences or a "
        "text file with one per line (translation), or --data CSV (forecasters: the window "
        "after its last row). Prints a table, or with --json one object per input.",
    )
    p.add_argument("name", help="a published name (e.g. speech, speech:5) or a model name")
    p.add_argument("inputs", nargs="*", help="WAV files, sentences, or one .txt file")
    p.add_argument("--data", help="a CSV the model's recipe reads (forecasters)")
    p.add_argument("--version", default="latest", help="published version (default: latest)")
    p.add_argument("--hub", help="hub folder or URL (default: $LSTM_ZOO_HUB or saved_models/)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    from lstm_zoo.errors import DataError
    from lstm_zoo.hub.task import from_pretrained

    if bool(args.inputs) == bool(args.data):
        raise DataError("give the inputs (WAV files, sentences or a .txt file) or --data CSV, "
                        "not both and not neither")
    task = from_pretrained(args.name, args.version, hub=args.hub)
    if args.data:
        frame = task.predict(args.data)
        if args.json:
            rows = [{"time": str(t), **{k: float(v) for k, v in row.items()}}
                    for t, row in frame.iterrows()]
            print(json.dumps(rows, indent=2))
        else:
            print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
        return 0
    labels, values = _read_inputs(args.inputs)
    answers = task.predict(values)
    if not isinstance(answers, dict):
        answers = {next(iter(task.output_spec)): answers}
    rows = [{"input": label, **{k: _plain(v[i]) for k, v in answers.items()}}
            for i, label in enumerate(labels)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        width = max(len(str(r["input"])) for r in rows)
        for row in rows:
            rest = "  ".join(str(v) for k, v in row.items() if k != "input")
            print(f"{row['input']:<{width}}  {rest}")
    return 0


def _read_inputs(inputs: list[str]) -> tuple[list[str], list[Any]]:
    """``(labels, values)``: WAV files read as 8 kHz waveforms, a ``.txt`` file's lines, or
    the arguments themselves as sentences."""
    from lstm_zoo.data.audio import read_wav
    from lstm_zoo.errors import DataError

    if all(item.lower().endswith(".wav") for item in inputs):
        return inputs, [read_wav(item) for item in inputs]
    if len(inputs) == 1 and inputs[0].lower().endswith(".txt"):
        path = Path(inputs[0])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path} as UTF-8 text: {exc}") from None
        sentences = [line for line in lines if line.strip()]
        if not sentences:
            raise DataError(f"{path} holds no text (every line is empty)")
        return sentences, sentences
    if any(not item.strip() for item in inputs):
        raise DataError("an input sentence is empty; give text to translate")
    return inputs, inputs


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar or list."""
    return value.tolist() if hasattr(value, "tolist") else value
