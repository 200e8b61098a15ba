"""Write the generated reference pages from the code: `.venv/bin/python docs/gen_reference.py`.

docs/reference/sweep-file.md comes from the sweep settings' declarations (harness.config), and
docs/reference/cli.md from the Typer app; tests/test_docs.py fails when either page is stale."""

from pathlib import Path

from harness.cli._reference import cli_reference
from harness.config import reference

HERE = Path(__file__).resolve().parent
SWEEP_FILE_INTRO = """# Sweep-file reference

A sweep file is TOML (`harness init` writes the two defaults; pass yours with `--config`). Every
key below is optional; a flag of `harness sweep` overrides the file's value. Generated from the
settings' declarations by `docs/gen_reference.py`; the default suite checks it matches the code.

"""


def pages() -> dict[Path, str]:
    return {HERE / "reference" / "sweep-file.md": SWEEP_FILE_INTRO + reference(),
            HERE / "reference" / "cli.md": cli_reference()}


if __name__ == "__main__":
    for path, text in pages().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
