"""Tokenisation, vocabularies and detokenisation in core TensorFlow string ops.

Everything here runs inside a serving graph (no tensorflow-text, no sentencepiece custom op):
``tf.strings`` regex/split/join, ``tf.strings.unicode_*`` and ``keras.layers.StringLookup``
(a core hash table).  The same functions tokenise the training data, so the vocabulary a
model is trained with and the one its exported graph applies cannot drift apart.

Two token schemes:

* ``"words"``: punctuation split off as its own token (hyphens and apostrophes stay inside
  words, as in "T-Shirt" or "don't"), then whitespace split;
* ``"chars"``: one token per Unicode character, spaces written as :data:`SPACE_MARK`; used for
  targets whose words are compounds ("dreihunderteinundzwanzig").
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

PAD = ""  # index 0 of every lookup: padding (and the Keras mask token)
UNK = "[UNK]"  # index 1: out-of-vocabulary tokens
BOS = "<s>"
EOS = "</s>"
SPACE_MARK = "\u2581"  # "▁", a space in the "chars" scheme
TOKEN_SCHEMES = ("words", "chars")

# Punctuation that becomes its own token: anything that is not a letter, digit, whitespace,
# hyphen or apostrophe (RE2 \pL/\pN are Unicode-aware, so "Mädchen" stays one word).
_PUNCT = r"([^\pL\pN\s\-'])"


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is a known token scheme, else a ``ValueError`` naming the choices."""
    if scheme not in TOKEN_SCHEMES:
        raise ValueError(f"token scheme must be one of {TOKEN_SCHEMES}, got {scheme!r}")
    return scheme


# Whitespace in the Unicode sense: RE2's \s is ASCII only, so a no-break or ideographic space
# (or a zero-width space / BOM) would otherwise become a "punctuation" token of its own.
_SPACES = r"[\s\p{Z}\x{85}\x{200B}\x{FEFF}]+"


def clean(texts: Any, lowercase: bool = False) -> Any:
    """Repair invalid UTF-8, trim, collapse whitespace and optionally lowercase
    (Unicode-aware) a ``tf.string`` tensor.

    Invalid bytes and C0 control characters (tabs, newlines ...) become spaces: the rest of the
    sentence is kept, and a run of bad bytes does not turn into a run of OOV tokens (with one
    U+FFFD token per bad byte the trained translator stopped early: "A man \\xff... is
    riding." gave "Ein Mann.").  Any Unicode whitespace counts as a space, so whitespace-only
    text is cleaned to ``""`` (zero tokens).
    """
    import tensorflow as tf

    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=ord(" "),
        replace_control_characters=True,
    )
    texts = tf.strings.regex_replace(texts, _SPACES, " ")
    texts = tf.strings.strip(texts)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    return texts


def tokenize(texts: Any, scheme: str = "words", lowercase: bool = False) -> Any:
    """A ``tf.string`` tensor ``[batch]`` -> a ``tf.RaggedTensor`` of tokens ``[batch, None]``.

    An empty or whitespace-only string gives zero tokens.
    """
    import tensorflow as tf

    check_scheme(scheme)
    texts = clean(tf.convert_to_tensor(texts, tf.string), lowercase)
    if scheme == "words":
        spaced = tf.strings.regex_replace(texts, _PUNCT, r" \1 ")
        return tf.strings.split(spaced)
    marked = tf.strings.regex_replace(texts, " ", SPACE_MARK)
    return tf.strings.unicode_split(marked, "UTF-8")


def detokenize(tokens: Any, scheme: str = "words") -> Any:
    """A ``tf.RaggedTensor`` of tokens ``[batch, None]`` -> ``tf.string`` ``[batch]``.

    Inverse of :func:`tokenize` up to spacing: "words" re-attaches punctuation to the word
    before (or after, for opening brackets); "chars" joins characters and restores spaces.
    """
    import tensorflow as tf

    check_scheme(scheme)
    if scheme == "chars":
        joined = tf.strings.reduce_join(tokens, axis=-1)
        return tf.strings.strip(tf.strings.regex_replace(joined, SPACE_MARK, " "))
    joined = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    joined = tf.strings.regex_replace(joined, r" ([.,!?;:%)\]}])", r"\1")
    joined = tf.strings.regex_replace(joined, r"([(\[{]) ", r"\1")
    joined = tf.strings.regex_replace(joined, r"\" ([^\"]*) \"", r'"\1"')
    return tf.strings.strip(joined)


def build_vocabulary(
    token_lists: Iterable[Sequence[str]],
    min_frequency: int = 1,
    max_size: int | None = None,
    specials: Sequence[str] = (),
) -> list[str]:
    """Tokens seen at least ``min_frequency`` times, most frequent first (ties alphabetical),
    after ``specials``; at most ``max_size`` entries in all.  ``PAD`` and ``UNK`` are not
    included: :func:`lookup_layer` adds them as indices 0 and 1."""
    counts = collections.Counter(token for tokens in token_lists for token in tokens)
    for token in (PAD, UNK, *specials):
        counts.pop(token, None)
    kept = (t for t, c in counts.items() if c >= min_frequency)
    words = sorted(kept, key=lambda t: (-counts[t], t))
    vocabulary = [*specials, *words]
    return vocabulary[:max_size] if max_size else vocabulary


def lookup_layer(vocabulary: Sequence[str], invert: bool = False, **kwargs: Any) -> Any:
    """A ``StringLookup`` with ``PAD`` at index 0 and ``UNK`` at 1, then ``vocabulary``
    (``invert=True``: ids -> tokens); ``kwargs`` go to the layer (``name`` ...)."""
    import keras

    return keras.layers.StringLookup(
        vocabulary=list(vocabulary), mask_token=PAD, oov_token=UNK, num_oov_indices=1,
        invert=invert, **kwargs
    )


def tokens_as_lists(ragged: Any) -> list[list[str]]:
    """A ragged token tensor as Python lists of ``str`` (for vocabularies and tests)."""
    return [[t.decode("utf-8") for t in row] for row in ragged.to_list()]
