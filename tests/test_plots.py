"""Figures: the axes each function draws, the values in them, and saved files."""

import matplotlib

matplotlib.use("Agg")  # no display: the figures never need one, pyplot users might

import numpy as np
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from workbench import plots


def grey(m, value):
    return np.full((m, 4, 4, 1), value, np.float32)


def test_image_grid_draws_three_rows_and_a_colour_bar():
    seeds = grey(5, 0.25)
    synthesised = seeds.copy()
    synthesised[1, 0, 0, 0] = 0.75  # one changed pixel: +0.5
    fig = plots.image_grid(seeds, synthesised, n=3, titles=["a", "b", "c", "d", "e"])
    assert isinstance(fig, Figure)
    images, colour_bar = fig.axes[:9], fig.axes[9:]
    assert len(images) == 9 and len(colour_bar) == 1
    assert [images[i].get_ylabel() for i in (0, 3, 6)] == ["seed", "synthesised", "difference"]
    assert [images[i].get_title() for i in (3, 4, 5)] == ["a", "b", "c"]
    difference = images[7].get_images()[0]  # row 3, column 2
    expected = np.zeros((4, 4))
    expected[0, 0] = 0.5
    np.testing.assert_allclose(difference.get_array(), expected)
    assert difference.get_clim() == (-0.5, 0.5)  # symmetric, the largest absolute difference
    np.testing.assert_allclose(images[0].get_images()[0].get_array(), np.full((4, 4), 0.25))


def test_image_grid_shows_rgb_clipped_and_its_difference_as_the_channel_mean():
    seeds = np.zeros((2, 3, 3, 3), np.float32)
    synthesised = seeds.copy()
    synthesised[0, :, :, 0] = 1.5  # out of range in red only
    fig = plots.image_grid(seeds, synthesised, scale=1.0)
    assert len(fig.axes) == 7
    shown = fig.axes[2].get_images()[0].get_array()  # synthesised, column 1
    assert shown.shape == (3, 3, 3) and shown.max() == 1.0
    difference = fig.axes[4].get_images()[0]
    np.testing.assert_allclose(difference.get_array(), np.full((3, 3), 0.5))
    assert difference.get_clim() == (-1.0, 1.0)


@pytest.mark.parametrize("seeds, synthesised, kwargs, message", [
    (grey(2, 0), grey(3, 0), {}, r"must both be \(m, h, w, c\)"),
    (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), {}, r"must both be \(m, h, w, c\)"),
    (grey(0, 0), grey(0, 0), {}, "no images to draw"),
    (grey(2, 0), grey(2, 0), {"n": 0}, "n must be a positive int"),
    (grey(3, 0), grey(3, 0), {"titles": ["x"]}, "one title per column"),
])
def test_image_grid_rejects_bad_input(seeds, synthesised, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.image_grid(seeds, synthesised, **kwargs)


def test_layer_heatmap_has_a_row_per_site_padded_with_blanks():
    values = {"conv1": np.array([0.1, 0.9]), "fc1": np.array([0.2, 0.4, 0.6, 0.8])}
    fig = plots.layer_heatmap(values, title="ochiai", label="score", marked=[("fc1", 2),
                                                                             ("other", 0)])
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the heatmap and its colour bar
    ax, colour_bar = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conv1", "fc1"]
    assert ax.get_title() == "ochiai" and ax.get_xlabel() == "neuron"
    assert colour_bar.get_ylabel() == "score"
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (2, 4)
    assert grid.mask.tolist() == [[False, False, True, True], [False] * 4]
    np.testing.assert_allclose(grid[1], [0.2, 0.4, 0.6, 0.8])
    (box,) = ax.patches  # the unknown site is not drawn
    assert (box.get_x(), box.get_y(), box.get_width()) == (1.5, 0.5, 1)


def test_layer_heatmap_draws_into_given_axes_with_a_fixed_range():
    fig = Figure()
    top, bottom = fig.subplots(2)
    assert plots.layer_heatmap({"a": np.ones(3)}, ax=bottom, vmin=0.0, vmax=2.0) is fig
    assert bottom.get_images()[0].get_clim() == (0.0, 2.0) and not top.get_images()
    with pytest.raises(ValueError, match="no sites"):
        plots.layer_heatmap({})


def test_save_writes_png_and_pdf_atomically(tmp_path):
    fig = plots.layer_heatmap({"a": np.arange(4.0)})
    png = plots.save(fig, tmp_path / "figures" / "heat.png")
    pdf = plots.save(fig, tmp_path / "figures" / "heat.pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["heat.pdf", "heat.png"]
    with pytest.raises(ValueError, match="format suffix"):
        plots.save(fig, tmp_path / "heat")


def test_grouped_bars_clusters_by_group_and_colours_by_series():
    rows = [{"model": "lenet1", "source": "none", "gain": 0.0, "ci": float("nan")},
            {"model": "lenet1", "source": "deepxplore", "gain": 0.02, "ci": 0.01},
            {"model": "lenet5", "source": "none", "gain": -0.01, "ci": None}]
    fig = plots.grouped_bars(rows, group="model", series="source", value="gain", error="ci",
                             ylabel="accuracy gain")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lenet1", "lenet5"]
    assert ax.get_ylabel() == "accuracy gain"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "deepxplore"]
    bars = ax.patches  # series by series: none (lenet1, lenet5), deepxplore (lenet1, gap)
    heights = [b.get_height() for b in bars]
    np.testing.assert_allclose(heights, [0.0, -0.01, 0.02, np.nan])
    centres = [b.get_x() + b.get_width() / 2 for b in bars]
    np.testing.assert_allclose(centres[:3], [-0.2, 0.8, 0.2])
    bar_sets = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bar_sets) == 2 and all(c.errorbar is not None for c in bar_sets)
    (segments,) = bar_sets[1].errorbar.lines[2]  # deepxplore's vertical error segments
    first = segments.get_segments()[0]
    np.testing.assert_allclose(first, [[0.2, 0.01], [0.2, 0.03]])  # 0.02 +- 0.01
    (segments,) = bar_sets[0].errorbar.lines[2]  # none's: NaN and None draw no length
    np.testing.assert_allclose([abs(s[1, 1] - s[0, 1]) for s in segments.get_segments()], 0)


def test_grouped_bars_rejects_rows_without_the_keys():
    with pytest.raises(ValueError, match="no bars"):
        plots.grouped_bars([], group="a", series="b", value="c")
    with pytest.raises(ValueError, match="every row needs the key 'gain'"):
        plots.grouped_bars([{"model": "x", "source": "y"}], group="model", series="source",
                           value="gain")


def test_curve_figures_one_figure_per_file_one_panel_per_panel():
    c = {"file": "fig9", "figure": "released", "panel": "lenet1", "label": "deepxplore",
         "x_name": "threshold", "x": [0.0, 0.5], "y": [0.8, 0.4], "err": [0.1, 0.0], "paper": False}
    figs = plots.curve_figures([c, {**c, "label": "deepxplore (paper)", "paper": True},
                                {**c, "panel": "lenet5"}, {**c, "file": "fig10"}])
    assert list(figs) == ["fig9", "fig10"]
    axes = figs["fig9"].axes
    assert [ax.get_title() for ax in axes] == ["lenet1 (released)", "lenet5 (released)"]
    ours, paper = (container.lines[0] for container in axes[0].containers)
    assert list(ours.get_ydata()) == [0.8, 0.4] and ours.get_linestyle() == "-"
    assert paper.get_linestyle() == ":" and paper.get_marker() == "x"


def test_curve_figures_rejects_a_curve_without_its_keys():
    with pytest.raises(ValueError, match="lacks"):
        plots.curve_figures([{"file": "f", "x": [0], "y": [1]}])
