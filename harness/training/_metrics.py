"""How well one trained model classifies one split: accuracy, macro-F1, per-class recall,
the confusion matrix, and the per-image predictions artifact (scikit-learn's metrics)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import numpy as np

PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"
CONFUSION_ARTIFACT = "plots/confusion_matrix.png"


@dataclass(frozen=True)
class SplitScores:
    """Scores of one split; `recall` maps class name to the recall of that class."""

    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    confusion: np.ndarray  # rows: true class, columns: predicted class

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """MLflow metrics, e.g. test_macro_f1 and test_recall/<class>."""
        out = {f"{prefix}_macro_f1": self.macro_f1}
        out.update({f"{prefix}_recall/{metric_safe(name)}": r for name, r in self.recall.items()})
        return out


def metric_safe(name: str) -> str:
    """A class name as MLflow accepts it in a metric key (letters, digits, _ - . space /)."""
    return re.sub(r"[^\w\-. ]", "_", name)


def predicted(probs: np.ndarray) -> np.ndarray:
    """The most probable class per row; for two classes that is p(second) > 0.5, as Keras counts it."""
    return np.argmax(probs, axis=1)


def scores(labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]) -> SplitScores:
    """Accuracy, macro-F1 (every class weighs the same) and per-class recall of `probs` (n, classes)."""
    return scores_of_classes(np.asarray(labels).astype(int), predicted(probs), class_names)


def scores_of_classes(y: np.ndarray, pred: np.ndarray, class_names: tuple[str, ...]) -> SplitScores:
    """The same from true and predicted class indices."""
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    indices = list(range(len(class_names)))
    recall = recall_score(y, pred, labels=indices, average=None, zero_division=0.0)
    return SplitScores(
        accuracy=float(np.mean(pred == y)),
        macro_f1=float(f1_score(y, pred, labels=indices, average="macro", zero_division=0.0)),
        recall={name: float(r) for name, r in zip(class_names, recall)},
        confusion=confusion_matrix(y, pred, labels=indices))


def predictions_csv(files: list[str], labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]) -> str:
    """One row per image: path, true class, predicted class, correct (0/1), then p(<class>) for every class
    (9 decimals: the logged model's own output can be checked against them to 1e-8)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["path", "true_class", "predicted_class", "correct", *(f"p({c})" for c in class_names)])
    for path, y, p, row in zip(files, np.asarray(labels).astype(int), predicted(probs), probs):
        writer.writerow([path, class_names[y], class_names[p], int(p == y), *(f"{v:.9f}" for v in row)])
    return out.getvalue()


@dataclass(frozen=True)
class Predictions:
    """A predictions artifact read back: paths, true and predicted class names, per-class probabilities."""

    paths: list[str]
    true_class: list[str]
    predicted_class: list[str]
    class_names: tuple[str, ...]
    probs: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return np.array([t == p for t, p in zip(self.true_class, self.predicted_class)], dtype=int)

    def scores(self) -> SplitScores:
        index = {c: i for i, c in enumerate(self.class_names)}
        return scores_of_classes(np.array([index[c] for c in self.true_class], dtype=int),
                                 np.array([index[c] for c in self.predicted_class], dtype=int), self.class_names)


def parse_predictions(text: str) -> Predictions:
    """A trial's predictions/test_predictions.csv, as predictions_csv wrote it."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    classes = tuple(h[2:-1] for h in header[4:])
    rows = list(reader)
    probs = np.array([[float(v) for v in r[4:]] for r in rows]).reshape(len(rows), len(classes))
    return Predictions([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], classes, probs)
