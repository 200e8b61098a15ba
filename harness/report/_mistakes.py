"""Where the models go wrong: each winner's confusion matrix, per-class recall side by side, and
the test images the winners get wrong, as thumbnails read from the data folder."""

from __future__ import annotations

from pathlib import Path

from harness.report import _figures as figures
from harness.report._document import Figure, Para, Sub, Thumbs, row, table
from harness.report._gather import LABEL, Study

MAX_THUMBS = 60  # enough to see a pattern; the count says how many there are


def mistakes(study: Study, thumbnails: bool = True) -> tuple:
    blocks = []
    for method, sweep in study.sweeps.items():
        scores = sweep.predictions.scores()
        blocks.append(Figure(f"confusion-{method}.png",
                             figures.confusion(scores.confusion, sweep.predictions.class_names,
                                               f"{LABEL[method]}: test confusion matrix"),
                             f"{LABEL[method]}: true class (rows) against predicted class (columns), test images"))
    recalls = {LABEL[m]: s.predictions.scores().recall for m, s in study.sweeps.items()}
    classes = list(next(iter(recalls.values())))
    blocks.append(table("recall", ["class", *recalls], [row(c, *(r.get(c) for r in recalls.values()),
                                                            data={"class": c}) for c in classes],
                        "test recall per class: the share of each class's test images classified right"))
    blocks.append(Figure("recall.png", figures.recall(recalls), "per-class test recall, side by side"))
    return tuple(blocks + _wrong(study, thumbnails))


def _wrong(study: Study, thumbnails: bool) -> list:
    """The test images every winner gets wrong (the one winner's, with one method): as thumbnails,
    or without them (`--no-thumbnails`: a report to publish without the photos) as a table."""
    sweeps = list(study.sweeps.values())
    preds = [s.predictions for s in sweeps]
    index = [dict(zip(p.paths, range(len(p.paths)))) for p in preds]
    wrong = [path for i, path in enumerate(preds[0].paths)
             if all(ix.get(path) is not None and p.predicted_class[ix[path]] != p.true_class[ix[path]]
                    for p, ix in zip(preds, index))]
    who = "both winners get" if len(sweeps) == 2 else f"the {LABEL[sweeps[0].method]} winner gets"
    blocks: list = [Sub(f"test images {who} wrong"),
                    Para(f"{len(wrong)} of {len(preds[0].paths)} test images" +
                         (f"; the first {MAX_THUMBS} are shown" if len(wrong) > MAX_THUMBS else "") + ".")]
    if not wrong:
        return blocks
    if not thumbnails:
        rows = [row(path, preds[0].true_class[index[0][path]], *(p.predicted_class[ix[path]] for p, ix in zip(preds, index)))
                for path in wrong[:MAX_THUMBS]]
        return blocks + [table("wrong", ["test image", "true class", *(f"{LABEL[s.method]} predicts" for s in sweeps)],
                               rows, "no thumbnails (--no-thumbnails): the images by their path in the data folder")]
    root = Path(sweeps[0].parent.tags.get("data_dir", ""))
    items, missing = [], 0
    for path in wrong[:MAX_THUMBS]:
        image = figures.thumbnail(root / path)
        if image is None:
            missing += 1
            continue
        said = " · ".join(f"{LABEL[s.method]}: {p.predicted_class[ix[path]]}" for s, p, ix in zip(sweeps, preds, index))
        items.append(Figure(f"thumbs/{len(items):03d}.png", image,
                            f"{path} · true: {preds[0].true_class[index[0][path]]} · {said}"))
    if missing:
        blocks.append(Para(f"{missing} of these images could not be read from the data folder {root} "
                           "(moved or deleted since the sweep): no thumbnail for them.", note=True))
    if items:
        blocks.append(Thumbs(tuple(items)))
    return blocks
