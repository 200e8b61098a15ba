"""Weights for keras.applications backbones: ImageNet files in Keras' cache, and files users pass.

Offline, Keras' error for ImageNet weights is a traceback about a URL; we ask keras.applications
which file it would fetch (its `get_file` intercepted) and say which file to copy where, in one
line. User files are Keras 3 `.weights.h5` files or the Keras 2 HDF5 files keras-applications
publishes, matched to the base's layers BY NAME with every shape checked first: Keras 3 reads those
by position and fails half-way through (or worse, fits) a file of another family or width."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
import tempfile
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
from keras.src.backend import config as _keras_config
from keras.src.utils import file_utils as _file_utils
from keras.src.utils.naming import to_snake_case

from harness.errors import HarnessError

Build = Callable[[str | None], keras.Model]
_ORIGINAL_GET_FILE = _file_utils.get_file
_GET_FILE_SIGNATURE = inspect.signature(_ORIGINAL_GET_FILE)
_ACCEPTED = "a Keras 3 .weights.h5 file or a Keras 2 HDF5 weights file (.h5 / .hdf5)"
_PASS_WEIGHTS = "pass --weights PATH (a .weights.h5 or Keras 2 .h5 file)"


class _Intercepted(BaseException):
    """Stops a build at get_file; a BaseException, so no `except Exception` on the way swallows it."""


@dataclass(frozen=True)
class _Fetch:
    """One get_file call as keras.applications made it, reduced to what locates and checks it."""
    fname: str
    file_hash: str | None
    hash_algorithm: str
    cache_dir: str | None
    cache_subdir: str

    @property
    def path(self) -> Path:
        """Where get_file would put (and look for) the file: its own os.path.join rules."""
        return Path(os.path.join(_cache_base(self.cache_dir), self.cache_subdir, self.fname))


def _cache_base(cache_dir: str | None) -> str:
    """The cache root exactly as Keras' get_file picks it: cache_dir, else config.keras_home()
    ($KERAS_HOME as read when Keras was imported, else ~/.keras, or /tmp/.keras where ~ is not
    writable), then /tmp/.keras if that is not writable. Keras' own value, not os.environ, since
    Keras never rereads the variable."""
    base = os.path.expanduser(cache_dir if cache_dir is not None else _keras_config.keras_home())
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return base


def keras_models_dir() -> Path:
    """Where keras.utils.get_file caches keras.applications' weights (cache_subdir "models")."""
    return Path(os.path.join(_cache_base(None), "models"))


def _fetch_of(args: tuple, kwargs: dict) -> _Fetch:
    """Read a get_file call with get_file's own signature, defaults and md5_hash fallback, so
    positional and keyword calls alike (the applications use both) give the same answer."""
    bound = _GET_FILE_SIGNATURE.bind(*args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    fname = os.fspath(a["fname"] or "") or os.path.basename(urllib.parse.urlsplit(a["origin"] or "").path)
    file_hash, algorithm = a["file_hash"], a["hash_algorithm"]
    if a["md5_hash"] is not None and file_hash is None:
        file_hash, algorithm = a["md5_hash"], "md5"
    return _Fetch(fname, file_hash, algorithm, a["cache_dir"], a["cache_subdir"])


@contextlib.contextmanager
def _get_file_replaced(stand_in: Callable) -> Iterator[Callable]:
    """Swap get_file in file_utils and in every loaded keras module that holds it under that name
    (the applications call `file_utils.get_file`, but `from ... import get_file` copies would
    escape a single patch); yields the function replaced, restores all of them on exit."""
    current = _file_utils.get_file
    saved = [(m, m.__dict__["get_file"]) for name, m in list(sys.modules.items())
             if (name == "keras" or name.startswith("keras.")) and m is not None
             and getattr(m, "__dict__", {}).get("get_file") in (current, _ORIGINAL_GET_FILE)]
    for m, _ in saved:
        m.get_file = stand_in
    try:
        yield current
    finally:  # put back what each module held
        for m, original in saved:
            m.get_file = original


def _first_line(exc: BaseException) -> str:
    """The informative start of a Keras message on one line: its first line, plus the next when
    the first only introduces it (Keras 3's "... Example error message for object X:"), without
    the variable dump Keras appends to shape errors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    text = lines[0] + (" " + lines[1] if lines[0].endswith(":") and len(lines) > 1 else "")
    text = text.split(" Target variable:")[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _probe(build: Build) -> _Fetch:
    """Run build("imagenet") until keras.applications asks for its weights file, then stop."""
    calls: list[_Fetch] = []

    def record(*args, **kwargs):
        calls.append(_fetch_of(args, kwargs))
        raise _Intercepted
    try:
        with _get_file_replaced(record):
            build("imagenet")
    except _Intercepted:
        return calls[0]
    except ValueError as e:
        raise HarnessError(f"keras.applications refuses weights='imagenet' here: {_first_line(e)}") from e
    raise HarnessError("this backbone loaded no ImageNet weights file (keras.applications fetched none)")


def imagenet_file(build: Build) -> str:
    """The file name keras.applications would fetch for this constructor call; downloads nothing."""
    return _probe(build).fname


def imagenet_cached(build: Build) -> Path | None:
    """The ImageNet weights file in Keras' cache if it is already there (hash not checked), else None."""
    return path if (path := _probe(build).path).is_file() else None


def _refuse_stale(fetch: _Fetch, label: str) -> None:
    """A cached file whose hash is not the published one makes Keras delete it and download it
    again; offline that loses a hand-copied file, so say so before Keras touches it."""
    path, expected = fetch.path, fetch.file_hash
    if expected and path.is_file() and not _file_utils.validate_file(path, expected, fetch.hash_algorithm):
        raise HarnessError(
            f"the ImageNet weights file {path} for {label} is not the one Keras expects (its hash "
            f"differs from the published {expected}) and Keras would delete it to download it "
            f"again: replace it with the published file, or {_PASS_WEIGHTS}")


def build_imagenet(build: Build, label: str) -> keras.Model:
    """build("imagenet"), with each way it fails offline or on bad arguments as one line."""
    state: dict = {"fetch": None, "downloading": False}

    def guarded(*args, **kwargs):
        state["fetch"] = fetch = _fetch_of(args, kwargs)
        _refuse_stale(fetch, label)
        state["downloading"] = True
        found = real(*args, **kwargs)  # the cached file's path, or the download's
        state["downloading"] = False
        return found

    with _get_file_replaced(guarded) as real:
        try:
            return build("imagenet")
        except Exception as e:
            if (error := _imagenet_error(e, state, label)) is e:
                raise
            raise error from e


def _imagenet_error(e: Exception, state: dict, label: str) -> Exception:
    """Which step failed: the arguments (before any file), the download, or the cached file;
    our own HarnessError and what is no refusal of the arguments (a bug) are left as they are."""
    fetch: _Fetch | None = state["fetch"]
    if isinstance(e, HarnessError) or (fetch is None and not isinstance(e, ValueError)):
        return e
    if fetch is None:
        return HarnessError(f"keras.applications cannot build {label} with ImageNet weights: "
                            f"{_first_line(e)}")
    if state["downloading"]:
        return HarnessError(
            f"no ImageNet weights for {label} here and they cannot be downloaded: Keras looks for "
            f"{fetch.path}; copy that file there, or {_PASS_WEIGHTS}; the download failed with: "
            f"{_first_line(e)}")
    return HarnessError(
        f"the ImageNet weights file {fetch.path} does not load into {label}: {_first_line(e)}; "
        f"delete it so Keras downloads it again, or {_PASS_WEIGHTS}")


def load_file(base: keras.Model, path: Path, label: str) -> None:
    """Load a user's weights file into `base`, all or nothing, or say in one line why not."""
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"weights file not found: {path}")
    if path.name.lower().endswith(".weights.h5"):
        _load_keras3(base, path, label)
    elif path.name.lower().endswith((".h5", ".hdf5")):
        _load_legacy(base, path, label)
    else:
        raise HarnessError(f"weights file {path} is of no kind harness loads: pass {_ACCEPTED}")


def _load_keras3(base: keras.Model, path: Path, label: str) -> None:
    """Keras 3's own loader, quiet; it may assign some variables before it fails, so the
    previous values are put back on failure."""
    before = [keras.ops.convert_to_numpy(v) for v in base.weights]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base.load_weights(str(path))
    except Exception as e:
        for v, value in zip(base.weights, before):
            v.assign(value)
        raise HarnessError(f"weights file {path} does not fit backbone {label}: {_first_line(e)}") from e


def _attr_list(node, name: str) -> list[str]:
    """An HDF5 list attribute as Keras 2 wrote it: whole, or split into name0, name1, ... when
    it exceeded the 64 KiB header limit; bytes decoded."""
    values, i = list(node.attrs.get(name, [])), 0
    while name not in node.attrs and f"{name}{i}" in node.attrs:
        values, i = values + list(node.attrs[f"{name}{i}"]), i + 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _file_layers(root: h5py.Group, path: Path) -> dict[str, list[h5py.Dataset]]:
    """Layer name -> its weight datasets in the file's order, for layers that have weights; a
    whole-model file keeps them under 'model_weights'."""
    group = root["model_weights"] if "layer_names" not in root.attrs and "model_weights" in root else root
    names = _attr_list(group, "layer_names")
    if not names:
        hint = "; a Keras 3 weights file must be named *.weights.h5" if "layers" in group else ""
        raise HarnessError(f"weights file {path} is not a Keras 2 HDF5 weights file (no layer_names){hint}")
    layers = {name: [group[name][w] for w in _attr_list(group[name], "weight_names")]
              for name in names if name in group}
    return {name: datasets for name, datasets in layers.items() if datasets}


def _pairs(weighted: list, stored: dict[str, list[h5py.Dataset]]) -> dict[str, str]:
    """Base layer name -> file layer name. Layers their builder named match by name; layers Keras
    named itself (class name in snake case, numbered per process: conv2d_93, normalization_1 in
    InceptionV3, Xception, EfficientNet, ConvNeXt) differ in every build, so those of one class
    pair up in model order, the order Keras' own loader relies on for all layers."""
    pairs, queues = {}, {}
    for layer in weighted:
        auto = re.compile(rf"{re.escape(to_snake_case(type(layer).__name__))}(_\d+)?")
        if auto.fullmatch(layer.name):
            queue = queues.setdefault(auto.pattern, [n for n in stored if auto.fullmatch(n)])
            if queue:
                pairs[layer.name] = queue.pop(0)
        elif layer.name in stored:
            pairs[layer.name] = layer.name
    return pairs


def _plan(base: keras.Model, stored: dict[str, list[h5py.Dataset]], label: str, path: Path) -> list:
    """(layer, variable, dataset) for every weight of `base`, after checking all of them: the
    first layer missing from the file, or the first count or shape that differs, is the error."""
    def refuse(reason: str) -> HarnessError:
        return HarnessError(f"weights file {path} does not fit backbone {label}: {reason}")
    weighted = [layer for layer in base.layers if layer.weights]
    pairs = _pairs(weighted, stored)
    has = f"(it has {''.join(f'{n!r}, ' for n in list(stored)[:2])}... {len(stored)} layers with weights)"
    if weighted and not pairs:
        raise refuse(f"layer {weighted[0].name} not in the file, nor any other layer of this backbone {has}")
    plan = []
    for layer in weighted:
        if layer.name not in pairs:
            raise refuse(f"layer {layer.name} not in the file {has}")
        # Keras 2's order, trainable first (gamma, beta, moving_*), as Keras 3's own loader reads it.
        ours, theirs = layer.trainable_weights + layer.non_trainable_weights, stored[pairs[layer.name]]
        name = layer.name + ("" if pairs[layer.name] == layer.name else f" (the file's {pairs[layer.name]})")
        if len(ours) != len(theirs):
            raise refuse(f"layer {name} has {len(ours)} weights here, {len(theirs)} in the file")
        for variable, dataset in zip(ours, theirs):
            if tuple(variable.shape) != tuple(dataset.shape):
                raise refuse(f"layer {name} {variable.name} is {tuple(variable.shape)} here, "
                             f"{tuple(dataset.shape)} in the file")
            plan.append((layer, variable, dataset))
    return plan


def _load_legacy(base: keras.Model, path: Path, label: str) -> None:
    """Match a Keras 2 file to `base` by layer name, check everything, then assign; layers of
    the file that `base` lacks (a classifier top) are ignored. Like Keras' own loader, layers
    that derive state from their weights (Normalization's mean and variance) are finalized."""
    try:
        with h5py.File(path, "r") as root:
            plan = _plan(base, _file_layers(root, path), label, path)
            values = [dataset[()] for _, _, dataset in plan]
    except (OSError, KeyError) as e:
        raise HarnessError(f"weights file {path} cannot be read as a Keras 2 HDF5 weights file: "
                           f"{_first_line(e)}") from e
    for (_, variable, _), value in zip(plan, values):
        variable.assign(keras.ops.cast(value, variable.dtype))
    for layer in dict.fromkeys(layer for layer, _, _ in plan if hasattr(layer, "finalize_state")):
        layer.finalize_state()
