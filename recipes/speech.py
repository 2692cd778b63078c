"""Connected-digit speech recognition with CTC: raw 8 kHz audio in, a digit string out.

Data: single spoken digits grouped by speaker — the Free Spoken Digit Dataset (``--data``
pointing at ``fsdd/`` or its ``recordings/`` folder of ``{digit}_{speaker}_{index}.wav``;
CC BY-SA 4.0, github.com/Jakobovski/free-spoken-digit-dataset) or, by default, digits
synthesised with eSpeak NG voices (:mod:`lstm_zoo.recipes.speech_synth`).  Utterances of 1-7
digits are built by concatenating clips of one speaker with short random silences, gain changes
and light noise (seeded).  Splits are speaker-independent: train on some speakers, validate
(tune, early-stop) on another, and test on a speaker seen in neither.

Model: ``speech-lstm-ctc`` (:func:`lstm_zoo.models.ctc.build_ctc_acoustic_model`): log-mel
features computed in-graph with ``tf.signal``, a stack of bidirectional
:class:`lstm_zoo.layers.LSTM` layers (optionally projected), per-frame CTC logits.  Evaluation
reports digit error rate (edit distance over digits / reference digits) and utterance accuracy
for greedy and beam-search decoding, on the validation and the unseen test speaker.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import lstm_zoo.models.ctc  # noqa: F401  registers the model's layers: .keras files load safely
from lstm_zoo.data.audio import read_wav, trim_silence
from lstm_zoo.errors import DataError
from lstm_zoo.recipe import Option, Recipe, RecipeData, TrainConfig
from lstm_zoo.registry import register_model, register_recipe

SAMPLE_RATE = 8000
ALPHABET = "0123456789"
FSDD_SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")
FSDD_SPLIT = {"train": ("george", "jackson", "nicolas"), "val": ("theo",), "test": ("yweweler",)}
FSDD_PATTERN = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
SYNTH_SPLIT_SIZES = {"train": 8, "val": 1, "test": 1}  # eSpeak voices per split (default data)
FSDD_PROVENANCE = (
    "Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset), CC BY-SA 4.0"
)
Bank = dict[str, dict[int, list[np.ndarray]]]  # speaker -> digit -> clips


@register_model(
    "speech-lstm-ctc",
    task="speech-recognition",
    description="Connected digits: in-graph log-mel -> bidirectional LSTM stack -> CTC",
    inputs="audio: float32 [batch, samples], 8 kHz mono in [-1, 1], zero-padded at the end",
    outputs="logits: float32 [batch, frames, 11] (digits 0-9, CTC blank last)",
    recipe="speech",
)
def build_speech_lstm_ctc(
    units: int = 96,
    num_layers: int = 2,
    bidirectional: bool = True,
    proj_units: int | None = None,
    dropout: float = 0.1,
    frame_stack: int = 3,
    spec_augment: bool = True,
    freq_mask_width: int = 6,
    time_mask_width: int = 8,
    vtlp: float = 0.0,
    num_mel_bins: int = 40,
    num_mfcc: int = 0,
    conv_channels: int = 0,
    conv_layers: int = 2,
    sample_rate: int = SAMPLE_RATE,
    implementation: str = "auto",
) -> Any:
    """The CTC acoustic model for the ten digits (see ``build_ctc_acoustic_model``)."""
    from lstm_zoo.models.ctc import build_ctc_acoustic_model

    return build_ctc_acoustic_model(
        num_labels=len(ALPHABET), units=units, num_layers=num_layers,
        bidirectional=bidirectional, proj_units=proj_units, dropout=dropout,
        frame_stack=frame_stack, spec_augment=spec_augment, freq_mask_width=freq_mask_width,
        time_mask_width=time_mask_width, vtlp=vtlp, num_mel_bins=num_mel_bins, num_mfcc=num_mfcc,
        conv_channels=conv_channels, conv_layers=conv_layers, sample_rate=sample_rate,
        implementation=implementation, name="speech_lstm_ctc",
    )


# ---- data ------------------------------------------------------------------------------------


def find_recordings(data: str | Path) -> Path:
    """The folder holding ``{digit}_{speaker}_{index}.wav`` under ``data`` (itself or a child)."""
    root = Path(data)
    if not root.exists():
        raise DataError(f"speech data folder {root} does not exist")
    if root.is_file():
        raise DataError(f"speech data {root} is a file; expected the FSDD folder of WAV files")
    for candidate in (root / "recordings", root / "fsdd" / "recordings", root):
        if candidate.is_dir() and any(candidate.glob("*.wav")):
            return candidate
    raise DataError(f"no .wav files in {root} (expected {{digit}}_{{speaker}}_{{index}}.wav)")


def load_fsdd_bank(data: str | Path, speakers: Sequence[str],
                   takes: Callable[[int], bool] | None = None) -> Bank:
    """Read the recordings of ``speakers`` as ``{speaker: {digit: [clip, ...]}}`` (trimmed);
    ``takes`` keeps only the recordings whose take number (the ``index`` in the file name)
    it accepts.

    Every file is validated by :func:`lstm_zoo.data.audio.read_wav` (stereo is downmixed, other
    rates resampled to 8 kHz; empty or corrupt files raise ``DataError`` naming the file).
    """
    folder = find_recordings(data)
    wanted = set(speakers)
    bank: Bank = {s: {d: [] for d in range(10)} for s in speakers}
    for path in sorted(folder.glob("*.wav")):
        match = FSDD_PATTERN.match(path.name)
        if match is None:
            raise DataError(
                f"unexpected file name {path}: expected {{digit}}_{{speaker}}_{{index}}.wav"
            )
        digit, speaker, take = int(match.group(1)), match.group(2), int(match.group(3))
        if speaker in wanted and (takes is None or takes(take)):
            bank[speaker][digit].append(trim_silence(read_wav(path, SAMPLE_RATE), SAMPLE_RATE))
    for speaker in speakers:
        missing = [d for d, clips in bank[speaker].items() if not clips]
        if missing:
            raise DataError(
                f"speaker {speaker!r} has no recordings of digit(s) {missing} in {folder}"
            )
    return bank


def build_utterances(
    bank: Bank,
    count: int,
    rng: np.random.Generator,
    *,
    min_digits: int = 1,
    max_digits: int = 7,
    speed_perturb: float = 0.0,
    channel_augment: float = 0.0,
    noise_snr_db: tuple[float, float] = (25.0, 45.0),
    sample_rate: int = SAMPLE_RATE,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``count`` connected-digit utterances from one random speaker of ``bank`` each.

    Each holds 1-7 random digits (uniform count), a random take per digit with its own gain
    (0.6-1.0), 50-250 ms silences between digits and up to 150 ms around them, an overall gain
    (0.3-1.0) and white noise at 25-45 dB SNR.  ``speed_perturb=0.1`` also resamples the whole
    utterance by a factor in [0.9, 1.1] (tempo and pitch change, a cheap speaker variation).
    ``channel_augment=p`` passes each utterance, with probability ``p``, through a random
    microphone-like frequency response (:func:`lstm_zoo.data.audio_augment.random_channel`) before
    the noise is added.  Neither option draws random numbers when off, so utterances built
    without them stay the same.
    Returns (waveforms float32, digit label arrays int32).
    """
    from lstm_zoo.data.audio import resample
    from lstm_zoo.data.audio_augment import random_channel

    speakers = sorted(bank)
    audios, labels = [], []
    for _ in range(count):
        speaker = bank[speakers[rng.integers(len(speakers))]]
        digits = rng.integers(0, 10, size=rng.integers(min_digits, max_digits + 1))
        pieces = [np.zeros(int(rng.uniform(0.0, 0.15) * sample_rate), np.float32)]
        for digit in digits:
            clips = speaker[int(digit)]
            clip = clips[rng.integers(len(clips))]
            peak = max(float(np.abs(clip).max()), 1e-4)
            pieces.append(clip / peak * rng.uniform(0.6, 1.0))
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.25) * sample_rate), np.float32))
        pieces[-1] = np.zeros(int(rng.uniform(0.0, 0.15) * sample_rate), np.float32)
        audio = np.concatenate(pieces).astype(np.float32) * rng.uniform(0.3, 1.0)
        if speed_perturb:
            # rates on a 1% grid keep the polyphase up/down factors small (fast resampling)
            factor = round(rng.uniform(1 - speed_perturb, 1 + speed_perturb), 2)
            audio = resample(audio, int(round(sample_rate * factor)), sample_rate)
        if channel_augment and rng.uniform() < channel_augment:
            audio = random_channel(audio, rng, sample_rate)
        power = float(np.mean(audio**2)) + 1e-10
        snr = rng.uniform(*noise_snr_db)
        audio = audio + rng.normal(0.0, np.sqrt(power / 10 ** (snr / 10)), audio.shape)
        audios.append(np.clip(audio, -1.0, 1.0).astype(np.float32))
        labels.append(digits.astype(np.int32))
    return audios, labels


def pad_batch(audios: Sequence[np.ndarray]) -> np.ndarray:
    """Zero-pad waveforms at the end into one float32 ``[batch, samples]`` array."""
    out = np.zeros((len(audios), max((len(a) for a in audios), default=0)), np.float32)
    for row, audio in enumerate(audios):
        out[row, : len(audio)] = audio
    return out


def check_audio(audios: Sequence[np.ndarray]) -> None:
    """Raise :class:`DataError` naming the first waveform with NaN or infinite samples.

    A non-finite sample poisons the per-utterance feature normalisation, and the model then
    answers with a confident, meaningless transcript (100 NaN samples in a "seven" gave "0").
    """
    for index, audio in enumerate(audios):
        finite = np.isfinite(np.asarray(audio, np.float32))
        if not finite.all():
            raise DataError(
                f"utterance {index} holds {int(finite.size - finite.sum())} NaN or infinite "
                f"sample(s) (first at sample {int(np.argmin(finite))}); audio must be finite"
            )


def _speaker_list(value: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return [v.strip() for v in value]


# ---- the recipe --------------------------------------------------------------------------------


@register_recipe
class SpeechRecipe(Recipe):
    """Connected digits, speaker-independent; see the module docstring."""

    name = "speech"
    task = "speech-recognition"
    description = "connected-digit recognition with CTC on raw 8 kHz audio (FSDD or eSpeak NG)"
    default_model = "speech-lstm-ctc"
    data_provenance = "eSpeak NG voices (espeakng-loader, GPL-3.0 engine); FSDD with --data"
    train_config = TrainConfig(
        epochs=15, batch_size=32, learning_rate=2e-3, clipnorm=5.0, patience=4,
        lr_schedule="plateau", monitor="val_loss",
    )
    headline_metric = "digit_error_rate"
    headline_higher_is_better = False
    beam_width = 16
    serving_decoder = "greedy"
    ensemble_combine = "stack"  # members' CTC logits, fused after decoding (ctc.decode_ensemble)
    # validation and test utterances depend on the seed, speakers and sizes only
    training_only_options = frozenset(
        {"synthetic_voices", "synthetic_share", "speed_perturb", "train_utterances",
         "channel_augment"})

    options = (
        Option("--train-speakers", "comma-separated training speakers "
               "(FSDD default: george,jackson,nicolas)"),
        Option("--val-speakers", "validation speakers (FSDD default: theo; '' for none, with "
               "--val-takes)"),
        Option("--val-takes", "FSDD: also validate on takes 0..N-1 of every training speaker, "
               "held out of training (FSDD's own test takes are 0-4), so that all speakers but "
               "the test ones can train"),
        Option("--test-speakers", "unseen test speakers (FSDD default: yweweler)"),
        Option("--train-utterances", "training utterances (default: 4000 FSDD, 1500 synthetic)",
               int),
        Option("--eval-utterances", "validation and test utterances each (default: 400 FSDD, "
               "200 synthetic)", int),
        Option("--synthetic-voices", "with --data: also train on this many eSpeak NG voices"),
        Option("--synthetic-share", "share of training utterances from the synthetic voices"),
        Option("--max-digits", "digits per utterance (1-N)"),
        Option("--speed-perturb", "training speed perturbation range (0.1: factor 0.9-1.1)"),
        Option("--channel-augment", "share of training utterances passed through a random "
               "microphone-like frequency response (0: none)"),
    )

    def load(self, data: str | Path | None = None, *, seed: int = 0,
             train_speakers: str | None = None, val_speakers: str | None = None,
             val_takes: int = 0, test_speakers: str | None = None,
             train_utterances: int | None = None, eval_utterances: int | None = None,
             synthetic_voices: int = 0, synthetic_share: float = 1 / 3, max_digits: int = 7,
             speed_perturb: float = 0.1, channel_augment: float = 0.0,
             **unknown: Any) -> RecipeData:
        """Build train/val/test utterances from FSDD (``data``) or eSpeak NG voices (None)."""
        from lstm_zoo.recipes import speech_synth

        if unknown:
            raise TypeError(f"unknown speech option(s): {', '.join(sorted(unknown))}")
        synthetic_voices, max_digits = int(synthetic_voices), int(max_digits)
        speed, channel = float(speed_perturb), float(channel_augment)
        if not 0 <= channel <= 1:
            raise DataError(f"--channel-augment must be in [0, 1], got {channel}")
        if not 1 <= max_digits <= 20:
            raise DataError(f"--max-digits must be between 1 and 20, got {max_digits}")
        if data is None:
            sizes = SYNTH_SPLIT_SIZES
            voices = speech_synth.default_voices(sum(sizes.values()))
            split = {"train": voices[: sizes["train"]],
                     "val": voices[sizes["train"]: sizes["train"] + sizes["val"]],
                     "test": voices[sizes["train"] + sizes["val"]:]}
            default_train, default_eval = 1500, 200
        else:
            split = dict(FSDD_SPLIT)
            default_train, default_eval = 4000, 400
        split = {
            "train": _speaker_list(train_speakers, split["train"]),
            "val": _speaker_list(val_speakers, split["val"]),
            "test": _speaker_list(test_speakers, split["test"]),
        }
        overlap = (set(split["train"]) & (set(split["val"]) | set(split["test"]))) | (
            set(split["val"]) & set(split["test"]))
        if overlap:
            raise DataError(f"speakers {sorted(overlap)} are in more than one split; "
                            "the evaluation must be speaker-independent")
        val_takes = int(val_takes)
        if val_takes < 0 or (val_takes and data is None):
            raise DataError(f"--val-takes must be >= 0 and needs --data (FSDD), got {val_takes}")
        if not split["val"] and not val_takes:
            raise DataError("no validation data: give --val-speakers or --val-takes N")
        speakers = split["train"] + split["val"] + split["test"]
        if data is None:
            bank = speech_synth.digit_bank(speakers, sample_rate=SAMPLE_RATE)
        else:
            bank = load_fsdd_bank(data, split["val"] + split["test"])
            bank.update(load_fsdd_bank(data, split["train"], lambda take: take >= val_takes))
        held_out: Bank = {}
        if val_takes:  # seen speakers, unseen recordings
            held = load_fsdd_bank(data, split["train"], lambda take: take < val_takes)
            held_out = {f"{s}[takes<{val_takes}]": clips for s, clips in held.items()}
        synth_names: list[str] = []
        if synthetic_voices and data is not None:
            synth_names = speech_synth.default_voices(synthetic_voices)
            bank.update(speech_synth.digit_bank(synth_names, sample_rate=SAMPLE_RATE))
        n_train = int(train_utterances or default_train)
        n_eval = int(eval_utterances or default_eval)
        share = float(synthetic_share)
        if not 0 <= share < 1:
            raise DataError(f"--synthetic-share must be in [0, 1), got {share}")
        n_synth = int(round(n_train * share)) if synth_names else 0
        # one random stream per split: the validation and test utterances depend only on the
        # seed, speakers and sizes, never on how much training data was drawn before them
        rng_train, rng_val, rng_test = (np.random.default_rng([seed, i]) for i in range(3))
        subsets = {k: {s: bank[s] for s in v} for k, v in split.items()}
        subsets["val"].update(held_out)
        train = build_utterances(subsets["train"], n_train - n_synth, rng_train,
                                 max_digits=max_digits, speed_perturb=speed,
                                 channel_augment=channel)
        if n_synth:  # a fixed share of the same budget, so runs with and without compare fairly
            synth = build_utterances({s: bank[s] for s in synth_names}, n_synth, rng_train,
                                     max_digits=max_digits, speed_perturb=speed,
                                     channel_augment=channel)
            train = (train[0] + synth[0], train[1] + synth[1])
        val = build_utterances(subsets["val"], n_eval, rng_val, max_digits=max_digits)
        test = build_utterances(subsets["test"], n_eval, rng_test, max_digits=max_digits)
        info = {
            "source": str(data) if data is not None else "eSpeak NG synthetic voices",
            "provenance": FSDD_PROVENANCE if data is not None else self.data_provenance,
            "train_speakers": split["train"] + synth_names,
            "val_speakers": split["val"],
            "val_held_out_takes": ({"speakers": split["train"], "takes": [0, val_takes - 1]}
                                   if val_takes else None),
            "test_speakers": split["test"],
            "utterances": {"train": n_train, "train_synthetic": n_synth, "val": n_eval,
                           "test": n_eval},
            "digits_per_utterance": [1, max_digits],
            "speed_perturb": speed,
            "channel_augment": channel,
            "sample_rate": SAMPLE_RATE,
            "train_audio_hours": round(sum(len(a) for a in train[0]) / SAMPLE_RATE / 3600, 3),
        }
        return RecipeData(train, val, test, model_args={"sample_rate": SAMPLE_RATE}, info=info,
                          extras={"train_labels": train[1]})

    # ---- training ----------------------------------------------------------------------------
    def loss(self) -> Any:
        from lstm_zoo.models.ctc import CTCLoss

        return CTCLoss()

    def fit(self, model: Any, data: RecipeData, config: TrainConfig, callbacks: list[Any],
            verbose: Any = "auto") -> Any:
        """Fit on length-bucketed, zero-padded batches (labels padded with -1); with
        ``steps_per_epoch`` the batches repeat, so every epoch has that many."""
        train = make_dataset(data.train, config.batch_size, shuffle=True,
                             repeat=bool(config.steps_per_epoch))
        val = make_dataset(data.val, config.batch_size, shuffle=False)
        return model.fit(train, validation_data=val, epochs=config.epochs,
                         steps_per_epoch=config.steps_per_epoch, callbacks=callbacks,
                         verbose=verbose)

    def batches(self, data: RecipeData, split: str, batch_size: int) -> Any:
        """The length-bucketed batches :meth:`fit` trains on (shuffled for ``"train"``)."""
        return make_dataset(getattr(data, split), batch_size, shuffle=split == "train")

    def search_space(self, hp: Any) -> dict[str, Any]:
        return {
            "units": hp.Int("units", 64, 192, step=32),
            "num_layers": hp.Int("num_layers", 1, 3),
            "proj_units": hp.Choice("proj_units", [0, 64]),
            "conv_channels": hp.Choice("conv_channels", [0, 16]),  # 0: no conv front end
            "num_mfcc": hp.Choice("num_mfcc", [0, 13]),  # 0: the 40 log-mel bands
            "dropout": hp.Float("dropout", 0.1, 0.3, step=0.1),
            # off did better on 3 of 4 held-out FSDD speakers; wider masks did worse on all 4
            "spec_augment": hp.Boolean("spec_augment"),
            "learning_rate": hp.Float("learning_rate", 5e-4, 5e-3, sampling="log"),
        }

    # ---- evaluation --------------------------------------------------------------------------
    def transcribe(self, model: Any, audios: Sequence[np.ndarray], method: str = "greedy",
                   batch_size: int = 32, progress: bool = False) -> list[list[int]]:
        """Digit sequences for raw waveforms (batched by length; order kept).

        ``progress`` shows a Keras progress bar over the utterances.
        """
        import keras

        from lstm_zoo.models.ctc import decode_to_lists

        check_audio(audios)
        infer = _inference_fn(model)
        order = np.argsort([len(a) for a in audios])
        out: list[list[int]] = [[] for _ in audios]
        bar = keras.utils.Progbar(len(order), unit_name="utterance") if progress else None
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            logits = infer(pad_batch([audios[i] for i in idx]))
            for i, seq in zip(idx, decode_to_lists(logits, method, self.beam_width)):
                out[int(i)] = seq
            if bar is not None:
                bar.add(len(idx))
        return out

    def score(self, model: Any, split: tuple[list, list]) -> dict[str, Any]:
        """Digit error rate and utterance accuracy for greedy and beam decoding."""
        from lstm_zoo.models.ctc import error_rates

        audios, labels = split
        refs = [list(map(int, lab)) for lab in labels]
        result: dict[str, Any] = {}
        for method in ("greedy", "beam"):
            rates = error_rates(refs, self.transcribe(model, audios, method, progress=True))
            result[method] = {
                "digit_error_rate": round(rates["error_rate"], 4),
                "utterance_accuracy": round(rates["exact_match"], 4),
                "digit_errors": rates["edit_distance"],
                "reference_digits": rates["reference_tokens"],
                "utterances": rates["utterances"],
            }
        result["beam"]["beam_width"] = self.beam_width
        return result

    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        from lstm_zoo.models.ctc import error_rates

        test = self.score(model, data.test)
        val = self.score(model, data.val)
        refs = [list(map(int, lab)) for lab in data.test[1]]
        train_labels = data.extras.get("train_labels") or data.train[1]
        common = Counter(int(d) for lab in train_labels for d in lab).most_common(1)[0][0]
        median_len = int(np.median([len(lab) for lab in train_labels]))
        baselines = {}
        for name, hyps in {
            "empty_transcript": [[] for _ in refs],
            "most_frequent_digit_x_median_length": [[common] * median_len for _ in refs],
        }.items():
            rates = error_rates(refs, hyps)
            baselines[name] = {"digit_error_rate": round(rates["error_rate"], 4),
                               "utterance_accuracy": round(rates["exact_match"], 4)}
        return {
            "test_speakers": data.info.get("test_speakers"),
            "val_speakers": data.info.get("val_speakers"),
            "digit_error_rate": test["beam"]["digit_error_rate"],
            "utterance_accuracy": test["beam"]["utterance_accuracy"],
            "greedy": test["greedy"],
            "beam": test["beam"],
            "validation": val,
            "baselines": baselines,
        }

    def plot(self, model: Any, data: RecipeData, out_dir: Path) -> list[Path]:
        audios, labels = data.test
        pick = next((i for i, lab in enumerate(labels) if len(lab) >= 4), 0)
        hyp = self.transcribe(model, [audios[pick]], "beam")[0]
        return [plot_ctc_alignment(model, audios[pick], labels[pick], hyp,
                                   Path(out_dir) / "ctc_alignment.png")]

    # ---- serving -----------------------------------------------------------------------------
    def serving_contract(self, model: Any) -> dict[str, Any]:
        return {"inputs": {"audio": ("float32", (None, None))},
                "outputs": {"transcript": ("string", (None,))}}

    def serving_function(self, model: Any) -> Any:
        """Raw zero-padded 8 kHz audio -> digit strings, all in-graph (core TF ops)."""
        import tensorflow as tf

        from lstm_zoo.models.ctc import decode_to_strings

        method, width = self.serving_decoder, self.beam_width

        def serve(inputs: dict[str, Any]) -> dict[str, Any]:
            audio = tf.convert_to_tensor(inputs["audio"], tf.float32)
            # a batch with no samples at all gets one zero sample: "" instead of an LSTM error
            audio = tf.pad(audio, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(audio)[1])]])
            logits = model(audio, training=False)
            return {"transcript": decode_to_strings(logits, method, width, ALPHABET)}

        return serve

    def sample_inputs(self, model: Any, data: RecipeData, n: int = 4) -> dict[str, Any]:
        return {"audio": pad_batch(data.test[0][:n])}


def _inference_fn(model: Any) -> Any:
    """``model`` as a ``tf.function`` over any batch and length (traced once per model)."""
    import tensorflow as tf

    fn = getattr(model, "_lstm_zoo_infer", None)
    if fn is None:
        fn = tf.function(lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([None, None], tf.float32)])
        model._lstm_zoo_infer = fn
    return fn


def make_dataset(split: tuple[list, list], batch_size: int, shuffle: bool, seed: int = 0,
                 bucket_seconds: float = 0.5, repeat: bool = False) -> Any:
    """A ``tf.data`` pipeline of (audio ``[B, S]``, labels ``[B, L]``), bucketed by length.

    Audio is zero-padded at the end (the model reads lengths from the padding) and labels are
    padded with -1 (the CTC loss counts the non-negative ones).  ``repeat``: an endless
    stream, repeated *before* bucketing, so every batch is full: a finite pass ends with one
    part-filled batch per bucket, each a new shape for the XLA-compiled LSTM loops to compile.
    """
    import tensorflow as tf

    audios, labels = split
    audio_rt = tf.RaggedTensor.from_row_lengths(
        np.concatenate(audios).astype(np.float32), [len(a) for a in audios])
    label_rt = tf.RaggedTensor.from_row_lengths(
        np.concatenate(labels).astype(np.int32), [len(lab) for lab in labels])
    ds = tf.data.Dataset.range(len(audios))
    if shuffle:
        ds = ds.shuffle(len(audios), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda i: (audio_rt[i], label_rt[i]), num_parallel_calls=tf.data.AUTOTUNE)
    # Batches are padded up to the bucket boundary: a handful of distinct shapes, so the
    # training step is traced a handful of times rather than once per batch.
    step = bucket_seconds * SAMPLE_RATE
    longest = max(len(a) for a in audios)
    boundaries = [int(b) for b in np.arange(step, longest + step + 1, step)]
    ds = ds.bucket_by_sequence_length(
        lambda a, _: tf.shape(a)[0], boundaries, [batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], [max(len(lab) for lab in labels)]), padding_values=(0.0, -1),
        pad_to_bucket_boundary=True,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def plot_ctc_alignment(model: Any, audio: np.ndarray, reference: Sequence[int],
                       hypothesis: Sequence[int], target: Path,
                       sample_rate: int = SAMPLE_RATE) -> Path:
    """Log-mel spectrogram over the per-frame CTC posteriors of one utterance (PNG)."""
    from lstm_zoo.models.ctc import softmax
    from lstm_zoo.models.ensemble import find_layer
    from lstm_zoo.plots import figure, save_figure

    features = np.asarray(find_layer(model, "log_mel")(audio[None, :]))[0]
    probs = softmax(np.asarray(_inference_fn(model)(audio[None, :]))[0])
    if probs.ndim == 3:  # an ensemble's stacked members: show their mean posterior
        probs = probs.mean(axis=0)
    seconds = len(audio) / sample_rate
    plt = figure()
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    top.imshow(features.T, origin="lower", aspect="auto", extent=[0, seconds, 0, features.shape[1]],
               cmap="magma")
    top.set_ylabel("mel band")
    ref, hyp = "".join(map(str, reference)), "".join(map(str, hypothesis))
    top.set_title(f"reference {ref}   beam-search transcript {hyp}")
    times = (np.arange(len(probs)) + 0.5) * seconds / len(probs)
    colors = plt.get_cmap("tab10")
    for digit in range(10):
        bottom.plot(times, probs[:, digit], color=colors(digit), lw=1.2)
    bottom.plot(times, probs[:, -1], "k:", lw=1, label="blank")
    best = probs.argmax(axis=1)
    start = 0
    for j in range(1, len(best) + 1):  # label each run of one winning digit at its peak
        if j == len(best) or best[j] != best[start]:
            label = int(best[start])
            if label != probs.shape[1] - 1:
                peak = start + int(probs[start:j, label].argmax())
                bottom.annotate(str(label), (times[peak], probs[peak, label]), ha="center",
                                va="bottom", color=colors(label), fontsize=11, weight="bold")
            start = j
    bottom.set_ylim(0, 1.12)
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("CTC posterior (digits coloured)")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, target)
