"""Each sweep setting is declared once, and parsing, the CLI flags, the reference and the logged
params all follow from the declarations."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from harness import config
from harness.cli import app
from harness.config._space import hypers
from harness.errors import HarnessError

runner = CliRunner()
# the flags the sweep command had before they were derived, and the run-mode ones it keeps as they are
OLD_SETTING_FLAGS = {"--data", "--backbone", "--weights", "--image-size", "--max-trials", "--epochs", "--tuner",
                     "--seed", "--experiment"}
RUN_MODE_FLAGS = {"--config", "--tracking-uri", "--resume", "--fresh", "--workers", "--role", "--oracle",
                  "--parent-run", "--connect-timeout", "--register"}


def _sweep_command(method="feature-extraction"):
    import typer.main

    return typer.main.get_command(app).commands["sweep"].commands[method]


@pytest.mark.parametrize("cls", [config.SweepConfig, config.Augmentation])
def test_every_field_is_declared(cls):
    settings = config.declared(cls)
    assert list(settings) == [f.name for f in dataclasses.fields(cls)]
    for s in settings.values():
        assert s.help and (s.table or s.kind in (str, int, float, bool, (int, str)))
        assert not s.choices or s.kind is str


def test_every_hyperparameter_is_declared():
    assert list(hypers()) == [f.name for f in dataclasses.fields(config.SearchSpace)]
    assert all(spec.help for _, spec in hypers().values())


@pytest.mark.parametrize("method", config.METHODS)
def test_the_declared_defaults_are_the_packaged_sweep_files(method):
    assert config.load(None, method) == config.SweepConfig(method=method)


@pytest.mark.parametrize("method", config.METHODS)
def test_each_declared_flag_is_an_option_of_the_sweep_command(method):
    flags = {s.flag for s in config.flagged(config.SweepConfig).values()}
    assert OLD_SETTING_FLAGS <= flags
    options = {opt for p in _sweep_command(method).params for opt in p.opts}
    assert flags | RUN_MODE_FLAGS <= options
    result = runner.invoke(app, ["sweep", method, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert all(re.search(rf"{re.escape(flag)}\b", result.output) for flag in flags | RUN_MODE_FLAGS)


def test_a_setting_flag_is_typed_by_its_declaration():
    params = {p.name: p for p in _sweep_command().params}
    for name, s in config.flagged(config.SweepConfig).items():
        assert params[name].default is None  # not given: the sweep file's value stands
        if s.kind is int:  # the CLI itself refuses a value of the wrong type
            result = runner.invoke(app, ["sweep", "feature-extraction", s.flag, "many"])
            assert result.exit_code == 2 and s.flag in result.output, result.output


def test_an_invalid_flag_value_is_one_line_naming_the_key():
    result = runner.invoke(app, ["sweep", "feature-extraction", "--image-size", "16"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: image_size: must be >= 32, got 16"]


def _changed(s: config.Setting, default):
    if s.kind is bool:
        return not default
    if s.choices:
        return next(c for c in reversed(s.choices) if c != default)
    return "elsewhere" if s.kind is str else default + 1


def test_every_flag_reaches_the_config(monkeypatch):
    import harness.study._launch as launching

    seen = []

    def launch(cfg, tracking_uri, how, reporter):
        seen.append(cfg)
        raise HarnessError("stopped before the sweep")

    monkeypatch.setattr(launching, "launch", launch)
    defaults = config.SweepConfig(method="fine-tune")
    wanted = {name: _changed(s, getattr(defaults, name)) for name, s in config.flagged(config.SweepConfig).items()}
    declared = config.declared(config.SweepConfig)
    args = [arg for name, v in wanted.items()
            for arg in ((declared[name].flag if v else "--no-" + declared[name].flag[2:],) if isinstance(v, bool)
                        else (declared[name].flag, str(v)))]
    result = runner.invoke(app, ["sweep", "fine-tune", *args])
    assert result.exit_code == 2 and "stopped before the sweep" in result.output, result.output
    (cfg,) = seen
    assert {name: getattr(cfg, name) for name in wanted} == wanted


def test_an_override_must_be_a_declared_setting():
    with pytest.raises(HarnessError, match="unknown key colour"):
        config.load(None, "fine-tune", {"colour": "red"})


def _reference_rows() -> dict[str, list[str]]:
    rows = {}
    for line in config.reference().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 5, line
        rows[cells[0].strip("`")] = cells
    return rows


def test_the_reference_lists_every_key_with_its_default():
    rows = _reference_rows()
    defaults = config.SweepConfig(method="fine-tune")
    expected = {}
    for name, s in config.declared(config.SweepConfig).items():
        if name in ("augmentation", "space"):
            continue
        expected[name] = "(none)" if name == "method" else getattr(defaults, name)
    expected |= {f"augmentation.{k}": v for k, v in dataclasses.asdict(defaults.augmentation).items()}
    for name, table in dataclasses.asdict(defaults.space).items():
        expected |= {f"space.{name}.{k}": v for k, v in table.items()}
    assert set(rows) == set(expected)
    for key, value in expected.items():
        shown = rows[key][2].strip("`")
        if isinstance(value, bool):
            assert shown == str(value).lower(), key
        elif isinstance(value, str) and key != "method":
            assert shown == f'"{value}"', key
        elif isinstance(value, (list, tuple)):
            assert shown == "[" + ", ".join(map(str, value)) + "]", key
        else:
            assert shown == str(value), key
    assert rows["backbone"][3] == ", ".join(f"`{b}`" for b in config.BACKBONES) and rows["image_size"][3] == ">= 32"
    assert rows["weights"][4] == "imagenet \\| none \\| PATH to a .weights.h5 file or a Keras 2 .h5 weights file"  # a pipe escaped


def _params_before(cfg, prepared) -> dict:
    """fixed_params_of as it was written before the declarations (its hand-written keys)."""
    from harness.training._heads import loss_for

    keys = ("backbone", "weights", "epochs", "batch_size", "preprocessing", "augment", "tuner", "seed")
    params = {k: getattr(cfg, k) for k in keys}
    for key, values in (("image_size", cfg.image_sizes), ("pooling", cfg.poolings)):
        if len(values) == 1:
            params[key] = values[0]
        else:
            params[f"{key}_choices"] = ",".join(map(str, values))
    if cfg.augment:
        params["augment_views"] = cfg.augment_views
        params["augmentation"] = " ".join(f"{k}={v}" for k, v in cfg.augmentation.__dict__.items())
    params["n_classes"] = prepared.data.n_classes
    params["output"] = "sigmoid" if prepared.data.n_classes == 2 else "softmax"
    params["loss"] = loss_for(prepared.data.n_classes).name
    if cfg.method == "fine-tune":  # added since: the fine-tuning cut
        params["unfreeze"] = cfg.unfreeze
    if cfg.backbone == "mobilenet_v2":
        params["alpha"] = cfg.alpha or 0.35  # since: 0 is the backbone's own width
    params["precision"] = prepared.precision
    params["optimizer"] = "adam" if cfg.method == "feature-extraction" else "adam, then rmsprop"
    params["feature_reads"] = prepared.data.reads  # added since: how trials read their inputs
    return params


PLAIN = {"backbone", "weights", "epochs", "batch_size", "preprocessing", "augment", "tuner", "seed",
         "n_classes", "output", "loss", "precision", "optimizer", "feature_reads"}


@pytest.mark.parametrize("changes, n_classes, keys", [
    ({}, 2, PLAIN | {"image_size", "pooling"}),
    ({"image_size": (150, 224), "pooling": ("flatten", "avg")}, 3, PLAIN | {"image_size_choices", "pooling_choices"}),
    ({"image_size": (224,), "backbone": "mobilenet_v2"}, 2, PLAIN | {"image_size", "pooling", "alpha"}),
    ({"augment": True, "augment_views": 0, "method": "fine-tune"}, 5,
     PLAIN | {"image_size", "pooling", "augment_views", "augmentation", "unfreeze"}),
])
def test_fixed_params_follow_the_declarations(changes, n_classes, keys):
    from harness.tuning._context import fixed_params_of

    cfg = dataclasses.replace(config.SweepConfig(method="feature-extraction"), **changes)
    prepared = SimpleNamespace(data=SimpleNamespace(n_classes=n_classes, reads="memory"), precision="float32")
    params = fixed_params_of(cfg, prepared)
    assert set(params) == keys
    assert params == _params_before(cfg, prepared)
