"""Spoken digits synthesised with eSpeak NG: the speech recipe's embedded default data.

The ``espeakng-loader`` PyPI package ships the eSpeak NG shared library and its voice data;
this module drives the library through ``ctypes`` (its C API: ``espeak_Initialize`` in
synchronous mode, a synthesis callback that collects 16-bit samples, ``espeak_SetVoiceByName``
and ``espeak_SetParameter`` for rate and pitch).  eSpeak NG produces 22.05 kHz audio, resampled
here to the recipe's 8 kHz.  A "speaker" is one voice: an English accent with a voice variant
(``en-us+f3``); its "takes" are the rates and pitches it is spoken at.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lstm_zoo.data.audio import resample, trim_silence

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = (
    "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029",
    "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)
VARIANTS = ("m1", "f2", "m3", "f4", "m5", "f1", "m7", "f3", "m2", "f5", "m4", "m6")
#: More of eSpeak NG's voice variants (its ``voices/!v`` files: other formant settings, the
#: Klatt synthesiser, breathiness, pitch ranges): drawn on after the 24 voices that cycle
#: ACCENTS and VARIANTS together, for more timbres than the twelve basic variants give.
MORE_VARIANTS = (
    "klatt", "Alex", "grandma", "klatt2", "Andy", "linda", "klatt3", "boris", "Annie",
    "klatt4", "david", "aunty", "klatt6", "max", "belinda", "m8", "travis", "steph",
    "grandpa", "anika", "caleb", "robert", "zac", "quincy",
)
DEFAULT_RATES = (130, 165, 200)  # words per minute
DEFAULT_PITCHES = (35, 50, 70)  # 0-100, eSpeak's default is 50

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _ESpeak:
    """The process-wide eSpeak NG library (it keeps global state, so one instance and a lock)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - it is a declared dependency
            raise RuntimeError(
                "the embedded speech data needs the 'espeakng-loader' package "
                f"(pip install espeakng-loader): {exc}"
            ) from None
        library = espeakng_loader.get_library_path()
        try:
            self.lib = ctypes.CDLL(library)
        except OSError as exc:
            raise RuntimeError(f"cannot load eSpeak NG library {library}: {exc}") from None
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data_root = str(Path(espeakng_loader.get_data_path()).parent).encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_root, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {self.sample_rate})")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, samples, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0: continue synthesis

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        """``text`` spoken by ``voice`` -> int16 samples at :attr:`sample_rate`."""
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r} (e.g. 'en-us+f3')")
            self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            self._chunks = []
            encoded = text.encode() + b"\0"
            status = self.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, 0, None, None)
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


_engine: _ESpeak | None = None
_engine_lock = threading.Lock()


def engine() -> _ESpeak:
    """The shared eSpeak NG engine (loaded on first use)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _ESpeak()
        return _engine


def synthesize(
    text: str, voice: str = "en-us", rate: int = 165, pitch: int = 50, sample_rate: int = 8000
) -> np.ndarray:
    """``text`` spoken by eSpeak NG ``voice`` as float32 in [-1, 1] at ``sample_rate`` Hz."""
    tts = engine()
    pcm = tts.synthesize(text, voice, rate, pitch).astype(np.float32) / 32768.0
    return resample(pcm, tts.sample_rate, sample_rate)


def voice_order() -> list[str]:
    """Every ``accent+variant`` voice, in the order :func:`default_voices` draws them.

    First the 24 voices that cycle ACCENTS and VARIANTS together (the only ones before
    MORE_VARIANTS existed, so earlier runs keep their voices), then passes over all
    variants, each pass pairing every variant with a new accent: consecutive voices differ in
    both, and timbres come in before more accents of the same timbre.
    """
    variants = VARIANTS + MORE_VARIANTS
    cycle = [(i % len(ACCENTS), i % len(VARIANTS)) for i in range(24)]
    seen = set(cycle)
    rest = [(a, v) for p in range(len(ACCENTS)) for v in range(len(variants))
            if (a := (v + p) % len(ACCENTS), v) not in seen]
    return [f"{ACCENTS[a]}+{variants[v]}" for a, v in cycle + rest]


def default_voices(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct voices ``accent+variant`` (see :func:`voice_order`).

    ``offset`` skips voices, so disjoint groups (train / validation / test) can be drawn.
    """
    order = voice_order()
    if offset < 0 or count < 0 or offset + count > len(order):
        raise ValueError(f"eSpeak NG offers {len(order)} voices here; asked for {count} "
                         f"from {offset}")
    return order[offset: offset + count]


def digit_bank(
    voices: Iterable[str],
    rates: Sequence[int] = DEFAULT_RATES,
    pitches: Sequence[int] = DEFAULT_PITCHES,
    sample_rate: int = 8000,
) -> dict[str, dict[int, list[np.ndarray]]]:
    """Every digit word spoken by every voice at every rate and pitch, silence trimmed.

    Returns ``{voice: {digit: [clip, ...]}}`` with ``len(rates) * len(pitches)`` clips per
    digit, each float32 at ``sample_rate`` Hz.
    """
    bank: dict[str, dict[int, list[np.ndarray]]] = {}
    for voice in voices:
        bank[voice] = {
            digit: [
                trim_silence(synthesize(word, voice, rate, pitch, sample_rate), sample_rate)
                for rate in rates
                for pitch in pitches
            ]
            for digit, word in enumerate(DIGIT_WORDS)
        }
    return bank
