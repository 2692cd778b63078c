"""Leave-one-speaker-out scores of speech runs: each run on its own (unseen) validation speaker.

    python benchmarks/speech_speaker_cv.py --data ../shared/data/fsdd RUN_DIR [RUN_DIR ...]

The runs are ``lstm-zoo train speech`` runs that each held one FSDD speaker out as validation
(``--train-speakers`` three of george, jackson, nicolas, theo; ``--val-speakers`` the fourth),
never touching the test speaker.  Runs are grouped by configuration (training settings,
hyperparameters and options: everything but the seed and the speakers) and by validation
speaker.  For every group this prints each run's greedy digit error rate and that of the
group's ensemble (``lstm_zoo.models.ensemble.build_ensemble``, decoded as ``lstm-zoo ensemble``
decodes), all on the validation utterances of seed 0 - what the recipe builds with
``--seed 0 --val-speakers SPEAKER`` - and, per configuration, the means over speakers.  A
configuration chosen on all four speakers rests on more than one voice and one microphone.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

FOLD_OPTIONS = ("train_speakers", "val_speakers", "val_takes")


def configuration(record: dict) -> str:
    """What a run was trained with, but for its seed and speakers: training settings (epochs,
    learning rate, ...), model hyperparameters and recipe options.  An option that is off
    (0, empty) counts as absent: runs recorded before the option existed did not list it."""
    options = {k: v for k, v in (record.get("options") or {}).items()
               if k not in FOLD_OPTIONS and v not in (None, 0, "")}
    return json.dumps({"train": record.get("train_config") or {},
                       "hparams": record.get("hparams") or {}, "options": options},
                      sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the FSDD folder")
    parser.add_argument("runs", nargs="+", help="finished speech run directories")
    args = parser.parse_args()

    from lstm_zoo.recipes.speech import SpeechRecipe

    from lstm_zoo.models.ctc import error_rates
    from lstm_zoo.models.ensemble import build_ensemble
    from lstm_zoo.training.driver import load_model

    recipe = SpeechRecipe()
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    train_speakers: dict[str, str | None] = {}  # validation speaker -> a run's training ones
    for run in args.runs:
        record = json.loads((Path(run) / "metrics.json").read_text())
        options = record.get("options") or {}
        speakers = options.get("val_speakers")
        if not speakers or "," in speakers:
            raise SystemExit(f"{run}: expected one --val-speakers speaker, got {speakers!r}")
        groups[(configuration(record), speakers)].append(run)
        train_speakers.setdefault(speakers, options.get("train_speakers"))

    table: dict[str, dict[str, tuple[list[float], float | None]]] = defaultdict(dict)
    val_splits: dict[str, tuple[list, list]] = {}  # built once per speaker, for every config
    for (config, speaker), runs in sorted(groups.items(), key=lambda kv: kv[0][1]):
        if speaker not in val_splits:
            # seed 0's validation utterances; one training utterance keeps the load fast (each
            # split has its own random stream, so the training size does not change them)
            val_splits[speaker] = recipe.load(
                args.data, seed=0, val_speakers=speaker, train_utterances=1,
                train_speakers=train_speakers[speaker]).val
        audios, labels = val_splits[speaker]
        refs = [list(map(int, label)) for label in labels]

        def der(model) -> float:
            hyps = recipe.transcribe(model, audios, method="greedy")
            return round(100 * error_rates(refs, hyps)["error_rate"], 2)

        models = [load_model(run) for run in runs]
        singles = [der(m) for m in models]
        ensemble = der(build_ensemble(models, "stack")) if len(models) > 1 else None
        table[config][speaker] = (singles, ensemble)
        print(f"{speaker:8s} {[Path(r).name for r in runs]}: runs {singles} %, "
              f"ensemble {ensemble} %", flush=True)

    for config, folds in table.items():
        singles = [x for s, _ in folds.values() for x in s]
        ensembles = [e for _, e in folds.values() if e is not None]
        print(f"\n{config}\n  speakers {sorted(folds)}: mean run {statistics.mean(singles):.2f} % "
              f"(n={len(singles)})" + (f", mean ensemble {statistics.mean(ensembles):.2f} % "
                                       f"({len(ensembles)} speakers)" if ensembles else ""))


if __name__ == "__main__":
    main()
