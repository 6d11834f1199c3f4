"""Matplotlib figures: image grids (seed / synthesised / difference) and per-layer heatmaps.

Functions return a ``matplotlib.figure.Figure`` and draw into ``ax`` when given one; they never
show (the notebook saves with :func:`save` to ``figures/<notebook>/``). Figures are built
without pyplot, so no GUI backend is involved. Images are NHWC in ``[0, 1]``, grey (one
channel) or RGB.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import SupportsFloat, SupportsInt

import numpy as np
from jaxtyping import ArrayLike, Real
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from workbench import files, validation

__all__ = ["curve_figures", "grouped_bars", "image_grid", "layer_heatmap", "panels", "save"]


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _show_image(ax, image):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(image, 0.0, 1.0))
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(seeds: Real[ArrayLike, "..."], synthesised: Real[ArrayLike, "..."], *,
               n: int = 8, titles: Sequence[object] | np.ndarray | None = None,
               scale: SupportsFloat | None = None, figsize_per_image: float = 1.3) -> Figure:
    """Three rows of ``n`` columns: the seeds, the synthesised inputs and their difference.

    The difference ``synthesised - seed`` is drawn with a diverging colour map centred on 0,
    the same scale for every column (``scale``, default the largest absolute difference);
    colour images show the mean over channels.

    Args:
        seeds, synthesised: ``(m, h, w, c)`` arrays in ``[0, 1]``; the first ``n`` are drawn.
        n: columns (at most ``m``).
        titles: a title per column (the predicted class, say), shown as ``str``.
        scale: the difference colour scale's half-range.
        figsize_per_image: inches per image.

    Returns:
        The figure: ``3 * n`` image axes (rows seed, synthesised, difference) and a colour bar.

    Example:
        >>> fig = image_grid(np.zeros((2, 4, 4, 1)), np.ones((2, 4, 4, 1)), n=2)
        >>> len(fig.axes), fig.axes[0].get_ylabel()
        (7, 'seed')
    """
    seeds, synthesised = np.asarray(seeds), np.asarray(synthesised)
    if seeds.shape != synthesised.shape or seeds.ndim != 4:
        raise ValueError(f"seeds and synthesised must both be (m, h, w, c), got {seeds.shape} "
                         f"and {synthesised.shape}")
    n = min(validation.positive_int(n, "n"), len(seeds))
    if n == 0:
        raise ValueError("no images to draw: seeds is empty")
    if titles is not None and len(titles) < n:
        raise ValueError(f"titles must give one title per column ({n}), got {len(titles)}")
    diff = (synthesised[:n] - seeds[:n]).mean(axis=-1)
    scale = float(scale or np.abs(diff).max() or 1.0)
    fig = _figure((figsize_per_image * n + 1.0, figsize_per_image * 3))
    axes = fig.subplots(3, n, squeeze=False)
    for j in range(n):
        _show_image(axes[0, j], seeds[j])
        _show_image(axes[1, j], synthesised[j])
        im = axes[2, j].imshow(diff[j], cmap="RdBu_r", vmin=-scale, vmax=scale)
        axes[2, j].set_xticks([])
        axes[2, j].set_yticks([])
        if titles is not None:
            axes[1, j].set_title(str(titles[j]), fontsize=8)
    for row, label in enumerate(("seed", "synthesised", "difference")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(im, ax=axes[2, :].tolist(), shrink=0.8)
    return fig


def layer_heatmap(values: Mapping[str, Real[ArrayLike, "..."]], *, title: str = "",
                  ax: Axes | None = None, cmap: str = "viridis",
                  marked: Sequence[tuple[str, SupportsInt]] = (), label: str = "",
                  vmin: float | None = None, vmax: float | None = None) -> Figure:
    """A heatmap with one row per site (layer) and one cell per neuron: suspiciousness,
    coverage or any per-neuron value. Sites of different widths are padded with blank cells.

    Args:
        values: ``{site: (neurons,)}`` in layer order.
        title: the axes title.
        ax: draw into these axes; a new figure otherwise.
        cmap: the colour map.
        marked: ``(site, index)`` neurons to outline (the selected ones).
        label: the colour bar's label.
        vmin, vmax: the colour range (default: the data's).

    Returns:
        The figure (``ax``'s own when given): the heatmap's axes, one y tick per site, and a
        colour bar.

    Example:
        >>> fig = layer_heatmap({"fc1": np.arange(3.0), "fc2": np.ones(2)}, marked=[("fc1", 1)])
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()], len(fig.axes[0].patches)
        (['fc1', 'fc2'], 1)
    """
    if not values:
        raise ValueError("values has no sites to draw")
    names = list(values)
    rows = [np.asarray(values[n], np.float64).reshape(-1) for n in names]
    width = max(len(r) for r in rows)
    grid = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        grid[i, : len(r)] = r
    if ax is None:
        fig = _figure((min(2.0 + 0.12 * width, 16.0), 0.9 + 0.35 * len(rows)))
        ax = fig.subplots()
    else:
        fig = ax.get_figure(root=True)
    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, aspect="auto", cmap=cmap, interpolation="nearest", vmin=vmin,
                   vmax=vmax)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("neuron")
    ax.set_title(title)
    row_of = {n: i for i, n in enumerate(names)}
    for site, index in marked:
        if site in row_of:
            ax.add_patch(_rectangle(int(index) - 0.5, row_of[site] - 0.5))
    fig.colorbar(im, ax=ax, label=label)
    return fig


def grouped_bars(rows: Sequence[Mapping], *, group: str, series: str, value: str,
                 error: str | None = None, ylabel: str = "", ax: Axes | None = None) -> Figure:
    """Bars of ``row[value]``: one cluster per ``row[group]`` on the x axis, one colour per
    ``row[series]``, each with an error bar of ``row[error]`` (a NaN or ``None`` error draws
    none), in order of first appearance; a missing combination leaves a gap.

    For result tables such as retraining gains per model (group) and input source (series),
    with ``error`` a confidence half-width (:func:`workbench.stats.mean_interval`) or a sample
    standard deviation.

    Args:
        rows: one dict per bar.
        group, series, value: the keys of the cluster, the colour and the bar height.
        error: the key of the error bar's half-length, if any.
        ylabel: the y axis label (default ``value``).
        ax: draw into these axes; a new figure otherwise.

    Returns:
        The figure (``ax``'s own when given), with a legend of the series.

    Example:
        >>> rows = [{"model": m, "source": s, "gain": 0.01} for m in "ab" for s in "xyz"]
        >>> fig = grouped_bars(rows, group="model", series="source", value="gain")
        >>> len(fig.axes[0].patches), [t.get_text() for t in fig.axes[0].get_xticklabels()]
        (6, ['a', 'b'])
    """
    if not rows:
        raise ValueError("rows is empty: no bars to draw")
    for key in (group, series, value) + ((error,) if error else ()):
        if any(key not in row for row in rows):
            raise ValueError(f"every row needs the key {key!r}; got keys {sorted(rows[0])}")
    groups = list(dict.fromkeys(row[group] for row in rows))
    names = list(dict.fromkeys(row[series] for row in rows))
    cell = {(row[group], row[series]): row for row in rows}
    if ax is None:
        fig = _figure((max(4.0, 1.2 * len(groups) * max(1, len(names)) / 2 + 2), 3.0))
        ax = fig.subplots()
    else:
        fig = ax.get_figure(root=True)
    width = 0.8 / len(names)
    x = np.arange(len(groups), dtype=np.float64)

    def number(r, key):
        return np.nan if r is None or r.get(key) is None else float(r[key])

    for j, name in enumerate(names):
        members = [cell.get((g, name)) for g in groups]
        heights = [number(r, value) for r in members]
        errors = None if error is None else [
            0.0 if np.isnan(number(r, error)) else number(r, error) for r in members]
        ax.bar(x + (j - (len(names) - 1) / 2) * width, heights, width, yerr=errors,
               label=str(name))
    ax.set_xticks(x, [str(g) for g in groups])
    ax.set_ylabel(ylabel or value)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8)
    return fig


def curve_figures(curves: Sequence[Mapping]) -> dict[str, Figure]:
    """Line plots of curves with error bars: one figure per ``curve["file"]``, one panel per
    ``curve["panel"]`` (shared y axis), one line per curve; the paper's points (``paper``
    true) dotted with crosses beside ours, solid with dots; a panel's title names
    ``curve["figure"]`` too where there is one.

    Args:
        curves: dicts with ``file``, ``panel``, ``label``, ``x_name``, ``x``, ``y``, ``err``
            and ``paper``, as :func:`workbench.experiments.deepxplore_tables.series` gives.

    Returns:
        ``{file: figure}`` in order of first appearance.

    Example:
        >>> c = {"file": "f", "panel": "a", "label": "ours", "x_name": "t", "x": [0, 1],
        ...      "y": [0.5, 0.6], "err": [0.1, 0.1], "paper": False}
        >>> figs = curve_figures([c, {**c, "panel": "b"}, {**c, "label": "p", "paper": True}])
        >>> [(f, len(fig.axes), len(fig.axes[0].containers)) for f, fig in figs.items()]
        [('f', 2, 2)]
    """
    keys = ("file", "panel", "label", "x_name", "x", "y", "err", "paper")
    for curve in curves:
        if missing := [k for k in keys if k not in curve]:
            raise ValueError(f"every curve needs the keys {list(keys)}; one lacks {missing}")
    out = {}
    for file in dict.fromkeys(c["file"] for c in curves):
        mine = [c for c in curves if c["file"] == file]
        names = list(dict.fromkeys(c["panel"] for c in mine))
        fig = _figure((3.2 * len(names), 3.2))
        for ax, panel in zip(fig.subplots(1, len(names), sharey=True, squeeze=False)[0], names):
            for c in (c for c in mine if c["panel"] == panel):
                ax.errorbar(c["x"], c["y"], yerr=c["err"], label=c["label"], capsize=2,
                            linestyle=":" if c["paper"] else "-", marker="x" if c["paper"] else "o")
            title = f"{panel} ({c['figure']})" if "figure" in c else str(panel)
            ax.set(title=title, xlabel=c["x_name"])
        ax.legend(fontsize=6)
        out[file] = fig
    return out


def panels(n: int, *, columns: int = 3, panel_size: tuple[float, float] = (13 / 3, 3.0)
           ) -> tuple[Figure, np.ndarray]:
    """A figure of ``n`` panels, ``columns`` to a row (the last row may be partly empty).

    Returns:
        The figure and its axes as a ``(rows, columns)`` array.

    Example:
        >>> fig, axes = panels(4)
        >>> axes.shape
        (2, 3)
    """
    n = validation.positive_int(n, "n")
    columns = validation.positive_int(columns, "columns")
    rows = -(-n // columns)
    fig = _figure((panel_size[0] * columns, panel_size[1] * rows))
    return fig, np.asarray(fig.subplots(rows, columns, squeeze=False))


def _rectangle(x, y):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, fill=False, edgecolor="red", linewidth=1.5)


def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Saves ``fig`` atomically (:func:`workbench.files.atomic_write`), in the format of the
    suffix of ``path`` (``.png``, ``.pdf``, ``.svg``), creating the folder; returns the path."""
    path = Path(path)
    suffix = path.suffix.lstrip(".").lower()
    if not suffix:
        raise ValueError(f"path must end in a format suffix such as .png, got {str(path)!r}")
    with files.atomic_write(path) as out:
        fig.savefig(out, format=suffix, dpi=dpi)
    return path
