"""Data handling several recipes share: time-series checks, windows and baselines
(:mod:`~lstm_zoo.data.timeseries`), audio features and augmentation (:mod:`~lstm_zoo.data.audio`,
:mod:`~lstm_zoo.data.audio_augment`) and in-graph text processing (:mod:`~lstm_zoo.data.text`).

It knows nothing of models, recipes or training: recipes import it, never the reverse.
"""
