"""Figures: the tutorial's two-panel training curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files and MLflow, never to a window
import matplotlib.pyplot as plt  # noqa: E402


def curves(history: dict[str, list[float]], title: str, phase2_start: int | None = None):
    """Loss and accuracy per epoch, train vs validation; a dashed line where phase 2 starts."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history.get(metric, []), "o-", ms=3, label=f"training {metric}")
        ax.plot(epochs, history.get(f"val_{metric}", []), "s-", ms=3, label=f"validation {metric}")
        if phase2_start:
            ax.axvline(phase2_start + 0.5, color="grey", ls="--", lw=1, label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
