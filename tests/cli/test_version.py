"""`harness --version`."""


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"harness {version('harness')}"
