"""`harness backbones`: every network a sweep may use, with what choosing one means."""

from __future__ import annotations

from typing import List, Optional

import typer

from harness.cli._app import app, handled, out


@app.command()
@handled
def backbones(
    names: Optional[List[str]] = typer.Argument(None, help="Backbones to list (default: all of them)."),
    image_size: int = typer.Option(150, "--image-size", help="Image side the feature shapes are given at."),
    alpha: float = typer.Option(0.0, "--alpha", help="MobileNet width; 0: each one's own."),
):
    """List the backbones: parameters, feature shape, fine-tuning cut, ImageNet file in the Keras cache."""
    from harness.backbones import catalog, keras_models_dir

    rows = catalog(image_size, names or None, alpha or None)
    lines = [("backbone", "params", f"features@{image_size}px", "unfreeze=1 freezes up to", "stages", "min/native",
              "preprocess", "ImageNet weights")]
    for r in rows:
        shape = "x".join(map(str, r.feature_shape)) if r.feature_shape else f"needs>={r.min_size}px"
        cached = "in the Keras cache" if r.imagenet_cached else ("downloaded on first use" if r.imagenet_file else "")
        lines.append((r.name, f"{r.params / 1e6:.1f}M", shape, r.cut or "-", str(r.stages),
                      f"{r.min_size}/{r.native_size}", r.preprocessing, cached))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    for line in lines:  # plain columns: a table that wraps in an 80-column terminal reads worse
        out.print("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1], soft_wrap=True,
                  highlight=False, markup=False)
    out.print(f"ImageNet files are looked for in {keras_models_dir()} (offline: copy them there, "
              "or pass --weights FILE to a sweep)", soft_wrap=True, highlight=False)
