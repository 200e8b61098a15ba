"""Filling the feature cache: the backbone over every split into memory-mapped files, in sealed
chunks, so a killed extraction resumes where it stopped; its size known, and checked against the
disk, before it starts."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from harness.data._folders import DataSet
from harness.errors import HarnessError
from harness.progress import NullReporter
from harness.training._rows import Rows
from harness.training._feature_cache import (EXACT_SPLITS, FeatureKey, Features, cache_root, complete, fsync,
                                             open_entry, seal)

CHUNK_BATCHES = 16  # batches per sealed chunk: what a killed extraction recomputes at most
STATE = "progress.json"


def extract(key: FeatureKey, data: DataSet, extractor, make_images, reporter=None,
            counts: dict[str, int] | None = None) -> Features:
    """Load features for `key`, computing and storing them on a miss.

    `extractor` maps raw images to [cut features, top features]; `make_images(split)` gives that
    split's (images, labels) batches in file order (a tf.data dataset), `counts[split]` rows of
    them (default: one per file; K per file for augmented views). One writer per entry (a file
    lock; a second sweep waits and then finds it made); it writes into `<entry>.partial`, seals a
    chunk every CHUNK_BATCHES batches, and renames the folder into place only when every file is on
    disk: nobody sees half an entry, and a killed writer's successor starts from its last chunk.
    """
    reporter = reporter or NullReporter()
    final = cache_root() / key.digest()
    if complete(final):
        return open_entry(final, hit=True, seconds=0.0)
    with _writer_lock(final, reporter):
        if complete(final):  # another sweep made it while this one waited
            return open_entry(final, hit=True, seconds=0.0)
        partial = final.with_name(f"{final.name}.partial")
        plan = _plan(extractor, data, counts)
        _check_space(plan, partial, reporter)  # before _resume makes the folder: a refusal leaves nothing
        state = _resume(partial, plan)
        try:
            for split in data.splits:
                _extract_split(extractor, make_images(split), partial, split, plan[split], state, reporter)
            seconds = sum(state["seconds"].values())
            (partial / STATE).unlink()
            seal(partial, key, data, seconds)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # a full disk: give the space back
            raise HarnessError(f"no space left for the feature cache in {cache_root()} ({exc.strerror}): free "
                               "some, e.g. `harness cache clear`, or point HARNESS_CACHE_DIR elsewhere") from None
        shutil.rmtree(final, ignore_errors=True)  # a broken entry left by an older writer
        partial.rename(final)
        fsync(final.parent)
    return open_entry(final, hit=False, seconds=seconds)


@contextlib.contextmanager
def _writer_lock(final: Path, reporter):
    with open(final.with_name(f"{final.name}.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            reporter.warn(f"another sweep is extracting these features ({final.name}); waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _plan(extractor, data: DataSet, counts: dict[str, int] | None) -> dict[str, dict]:
    """Per split: rows, dtype and the two layers' shapes: everything the files' sizes follow from."""
    cut, top = ([int(d) for d in t.shape[1:]] for t in extractor.outputs)
    return {split: {"count": (counts or {}).get(split, len(part.files)), "cut": cut, "top": top,
                    "dtype": "float32" if split in EXACT_SPLITS else "float16"}
            for split, part in data.splits.items()}


def entry_bytes(plan: dict[str, dict]) -> int:
    """The entry's size on disk: both layers of every split, and the labels."""
    return sum(p["count"] * (math.prod(p["cut"]) + math.prod(p["top"])) * np.dtype(p["dtype"]).itemsize
               + p["count"] * 4 for p in plan.values())


def _check_space(plan: dict[str, dict], partial: Path, reporter) -> None:
    needed = entry_bytes(plan) - sum(f.stat().st_size for f in partial.glob("*.npy"))  # a resumed part is paid
    free = shutil.disk_usage(cache_root()).free
    reporter.cache_planned(entry_bytes(plan), free, str(cache_root()))
    if needed > free:
        raise HarnessError(f"the feature cache entry needs {needed / 1e9:.2f} GB in {cache_root()}, but only "
                           f"{free / 1e9:.2f} GB are free: free some (harness cache clear) or point "
                           "HARNESS_CACHE_DIR at a larger disk")


def _resume(partial: Path, plan: dict[str, dict]) -> dict:
    """What a killed writer left: rows sealed per split, if it was writing this very plan."""
    try:
        state = json.loads((partial / STATE).read_text())
        if state["plan"] == plan:
            return state
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return {"plan": plan, "rows": {}, "batches": {}, "seconds": {}}


def _save_state(partial: Path, state: dict) -> None:
    tmp = partial / f"{STATE}.tmp"
    tmp.write_text(json.dumps(state))
    fsync(tmp)
    tmp.replace(partial / STATE)


def _files(partial: Path, split: str, p: dict, fresh: bool) -> list[Rows]:
    """The split's three files (cut, top, labels): made, with their blocks reserved, on a fresh
    start; reopened to resume. Written with pwrite, so memory stays flat at any size."""
    shapes = {"cut": (p["count"], *p["cut"]), "top": (p["count"], *p["top"]), "labels": (p["count"],)}
    dtypes = {"cut": p["dtype"], "top": p["dtype"], "labels": "float32"}
    paths = {name: partial / f"{split}.{name}.npy" for name in shapes}
    if not fresh:
        return [Rows.open(paths[name], writable=True) for name in shapes]
    return [Rows.create(paths[name], dtypes[name], shapes[name]) for name in shapes]


def _extract_split(extractor, images, partial: Path, split: str, p: dict, state: dict, reporter) -> None:
    """Batches through the backbone into the split's files from the last sealed row on; a chunk is
    sealed (files flushed, then the state) every CHUNK_BATCHES batches: memory stays flat."""
    count, row, skipped = p["count"], state["rows"].get(split, 0), state["batches"].get(split, 0)
    if row == count:
        return
    reporter.extracting(split, count)
    files = _files(partial, split, p, fresh=row == 0)
    first_row, before, started, batches = row, state["seconds"].get(split, 0.0), time.perf_counter(), 0
    try:
        full = None
        for x, y in images.skip(skipped):
            full = full or len(x)
            c, t = _predict(extractor, np.asarray(x), full)
            for rows, values in zip(files, (c, t, np.asarray(y).reshape(-1))):
                rows.write(row, values)
            row, batches = row + len(c), batches + 1
            if batches % CHUNK_BATCHES == 0 or row >= count:
                _seal_chunk(partial, split, files, state, (row, skipped + batches, before + time.perf_counter() - started))
                reporter.extracted(split, row - first_row, count - first_row, time.perf_counter() - started)
    finally:
        for rows in files:
            rows.close()
    if row != count:
        raise RuntimeError(f"{split}: extracted {row} images, expected {count}")


def _predict(extractor, x: np.ndarray, full: int):
    """The extractor on one batch, a short last batch padded to the full size: a new batch shape
    would trace the network again, which costs more than the padding (about a second per split)."""
    n = len(x)
    if n < full:
        x = np.concatenate([x, np.zeros((full - n, *x.shape[1:]), x.dtype)])
    return [np.asarray(out)[:n] for out in extractor.predict_on_batch(x)]


def _seal_chunk(partial: Path, split: str, files: list[Rows], state: dict, progress: tuple) -> None:
    """The rows written so far on disk first, then the state that says so."""
    for rows in files:
        rows.sync()
    state["rows"][split], state["batches"][split], state["seconds"][split] = progress
    _save_state(partial, state)
