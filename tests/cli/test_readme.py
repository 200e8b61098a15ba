"""The README's own-photos block, run as written (from a fresh working folder, through the CLI),
on synthetic photos with random weights and tiny sweeps; and the README stays short."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from conftest import runs_of
from harness.cli import app

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
TINY = ["--image-size", "32", "--max-trials", "1", "--epochs", "1"]  # appended: the last value wins


def _block(heading: str) -> list[str]:
    """The commands of the first bash block under `heading`, comments removed."""
    section = README.split(f"\n## {heading}\n", 1)[1]
    code = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [" ".join(shlex.split(line, comments=True)) for line in code.splitlines() if line.strip()]


def _photos(tmp_path: Path) -> Path:
    """An unsplit folder of class folders, as people's photos come."""
    from harness.data._folders import write_synthetic

    split = write_synthetic(tmp_path / "made", per_class=6, size=40, classes=3)
    flat = tmp_path / "photos" / "flowers"
    for image in split.glob("*/*/*.jpg"):
        (flat / image.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(image, flat / image.parent.name / f"{image.parent.parent.name}-{image.name}")
    shutil.copytree(split / "test", tmp_path / "photos" / "new")
    return tmp_path / "photos"


def _weights(tmp_path: Path) -> str:
    from harness.backbones._registry import build_base

    path = tmp_path / "weights" / "mobilenet_v2_0.35_imagenet_no_top.weights.h5"
    path.parent.mkdir()
    build_base("mobilenet_v2", 32, "none").save_weights(path)
    return str(path)


def test_the_own_photos_block_runs_as_written(tmp_path):
    commands = _block("Your own photos")
    assert commands[0] == "cd ~/experiments" and commands[-1] == "harness ui"  # ui: tests/servers/test_quiet_servers.py
    photos, weights = _photos(tmp_path), _weights(tmp_path)
    runner, ran = CliRunner(), []
    for command in commands[1:-1]:
        if command.startswith("W="):
            assert command.split("=", 1)[1].endswith(Path(weights).name)
            continue
        args = shlex.split(command.replace("~/photos", str(photos)).replace("$W", weights))[1:]
        args += TINY if args[0] == "sweep" else []
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{command}\n{result.output}"
        ran.append((args[0], result.stdout))
    assert [name for name, _ in ran] == ["data", "data", "sweep", "sweep", "compare", "predict", "predict"]
    client = MlflowClient(tracking_uri=f"sqlite:///{Path('mlruns/mlflow.db').resolve()}")
    parents, _ = runs_of(client, "flowers")
    sweeps = sorted(p.data.tags["method"] for p in parents if p.data.tags.get("sweep") == "true")
    assert sweeps == ["feature-extraction", "fine-tune"]
    printed = [line.split("\t") for line in ran[5][1].strip().splitlines()]
    assert len(printed) == 18 and all(label in ("blue", "green", "red") for _, label, _ in printed)
    assert Path("predictions.csv").read_text().startswith("path,p(blue),p(green),p(red)")


def test_the_readme_is_a_few_screens():
    assert len(README.splitlines()) <= 300
    assert "```bash\n.venv/bin/python -m pytest -n 2 --dist loadfile\n```" in README  # what CI runs
