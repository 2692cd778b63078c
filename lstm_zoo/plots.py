"""Plots shared by every recipe (training curves); matplotlib with the headless Agg backend."""

from __future__ import annotations

import csv
from pathlib import Path

from lstm_zoo.files import atomic_path


def figure():
    """A new matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, target: Path) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    figure().close(fig)
    return target


def plot_training_curves(history_csv: Path, target: Path) -> Path | None:
    """Loss (and other metrics) per epoch, train vs validation, from a ``CSVLogger`` file."""
    if not history_csv.exists():
        return None
    with history_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    plt = figure()
    metrics = [k for k in rows[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    for ax, name in zip(axes[0], metrics):
        ax.plot(epochs, [float(r[name]) for r in rows], label=f"train {name}")
        if f"val_{name}" in rows[0]:
            ax.plot(epochs, [float(r[f"val_{name}"]) for r in rows], label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    return save_figure(fig, target)
