"""`harness cache ls|clear`: the feature cache."""

from __future__ import annotations

import typer

from harness.cli._app import app, handled, out

cache_app = typer.Typer(help="See or free the feature cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("ls")
@handled
def cache_ls():
    """List the cached feature sets."""
    from harness.training._feature_cache import cache_root, list_entries

    entries = list_entries()
    for e in entries:
        k = e.get("views", "").split(";")[0].removeprefix("views=")
        views = f" ({k} augmented views of each training image)" if k else ""
        out.print(f"{e['id']}  {e['backbone']:<12} cut {e['cut_layer']:<16} {e['weights']:<24} {e['image_size']}px "
                  f"{e['images']} images{views}  {e['bytes'] / 1e6:.1f} MB  extracted in {e['seconds']:.1f}s",
                  soft_wrap=True)
    out.print(f"{len(entries)} entries in {cache_root()}", soft_wrap=True, highlight=False)  # a path, whole


@cache_app.command("clear")
@handled
def cache_clear():
    """Delete every cached feature set."""
    from harness.training._feature_cache import clear

    out.print(f"freed {clear() / 1e6:.1f} MB")
