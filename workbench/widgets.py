"""The interactive neuron explorer: ipywidgets controls over a clickable heatmap of every neuron.

``Explorer`` shows one row per layer and one cell per neuron, coloured by a coverage criterion
(NC, KMNC, NBC, SNAC, TKNC; Pei et al. SOSP 2017, Ma et al. ASE 2018), a suspiciousness measure
of the hit spectrum (Tarantula, Ochiai, D* and the rest of :mod:`workbench.suspiciousness`;
Eniser et al. FASE 2019) or a plain statistic, with dead neurons (never above 0 on the training
inputs) crossed out. The heatmap is a live matplotlib figure (ipympl): hover over a cell to read
its site, index and value, click it to select its neuron. The selected neuron's panel shows its
activation histogram on passing versus failing test inputs and the test inputs that activate it
most (or says that it is never active), and, on demand, inputs synthesised for it by DeepFault's
gradient ascent with the model's predictions.

The numbers come from :mod:`workbench.experiments.explorer` (the data each model caches, the
per-neuron values of every measure, ties, dead and always-active neurons); this module is only
the UI over them. Synthesis raises the neuron's pre-activation value, as DeepFault does, because
a post-ReLU value has no gradient while the neuron is off.

All heavy work is done once per model and conv reduction, and cached: training (or loading the
checkpoint), the activations of every test input and the training profile. A control change
then only re-evaluates one jitted criterion over the cached activations (thresholds and the
class are traced values, so nothing recompiles) and redraws; ``benchmarks/bench_explorer.py``
measures how long that takes.

Example (in a notebook)::

    from workbench import widgets
    explorer = widgets.Explorer("lenet5", epochs=1, n_train=5000, n_test=2000, load=False)
    display(explorer)   # the controls and a "loading" status at once
    explorer.load()     # trains or loads the model, traces and profiles (seconds)
    explorer.measure.value = "ochiai"   # the same as choosing it in the dropdown
    explorer.select("fc1", 5)           # the same as clicking its cell
"""

import io
import threading
import time
import warnings
from collections.abc import Sequence

import ipywidgets as w
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from workbench import activations, models, plots, synthesis
from workbench.experiments import explorer

# Importing the ipympl package switches matplotlib's backend to its own: put the user's back.
_BACKEND = dict.__getitem__(matplotlib.rcParams, "backend")
from ipympl.backend_nbagg import Canvas, FigureManager

matplotlib.use(_BACKEND)

__all__ = ["Explorer"]

ALL = "all"  # the class control's value for every class
_USES_K = ("kmnc", "tknc")
_USES_SCALE = ("nbc", "snac")
_DPI = 80
_WIDE = w.Layout(width="560px")
_NARROW = w.Layout(width="340px")
_STYLE = {"description_width": "110px"}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _canvas(figure: Figure) -> Canvas:
    """An ipympl canvas over ``figure``: hover messages in its footer, clicks to the kernel."""
    canvas = Canvas(figure)
    with warnings.catch_warnings():  # ipympl's toolbar passes traitlets a positional argument
        warnings.filterwarnings("ignore", "Passing unrecognized arguments", DeprecationWarning)
        FigureManager(canvas, 0)
    canvas.header_visible = False
    canvas.toolbar_position = "right"  # on the left it would hide the layer names
    canvas.resizable = False
    canvas.footer_visible = True
    return canvas


class Explorer:
    """The explorer's widgets, their cached data and the figures they drive.

    Controls (ipywidgets, each an attribute you may set from Python): ``dataset``, ``model``,
    ``layers`` (which sites to show), ``reduce`` (how a conv map becomes neurons: channel mean,
    channel max or every position), ``measure``, ``threshold`` (NC / activation threshold, or
    NBC's and SNAC's std multiple), ``k`` (KMNC's sections, TKNC's k), ``label`` (a class, or
    ``"all"``); the selected neuron ``site`` and ``neuron`` (or click the heatmap,
    :meth:`select`); and for synthesis ``n_seeds``, ``step_size``, ``d``, ``follow`` (synthesise
    on every selection) and the ``synthesize_button``.

    The heatmap is ``heatmap``, an ipympl canvas over ``figure`` (:meth:`heatmap_png` for a
    PNG); the neuron panel and the synthesis are PNGs in ``neuron_image`` and
    ``synthesis_image`` (a placeholder stands in ``synthesis_box`` until the first synthesis).
    ``selection`` and ``note`` say what is selected and why a row looks as it does. The numbers
    behind the heatmap are ``values`` (``{site: [neurons]}``), the last synthesis is
    ``last_synthesis``; ``seconds`` is the time the last control change took.

    Args:
        model_name: the model shown first.
        model_names: the models offered (default: every zoo model of every dataset).
        weights, epochs, n_train, n_test, seed, root, cache: see
            :func:`workbench.experiments.explorer.load_model_data`.
        measure, threshold, k, label, reduce: the controls' initial values.
        warm: compile every measure in a background thread once the model is loaded
            (:meth:`warm`).
        load: set up the first model now; with ``False``, display the explorer first (it says
            "loading") and then call :meth:`load`.
    """

    def __init__(self, model_name: str = "lenet5", *, model_names: Sequence[str] | None = None,
                 weights: str = "trained", epochs: int | None = 1, n_train: int | None = 5000,
                 n_test: int | None = 2000, seed: int = 0, root=None, cache=None,
                 measure: str = "nc", threshold: float = 0.0, k: int = 2,
                 label: int | str | None = ALL, reduce: str = "mean", warm: bool = False,
                 load: bool = True):
        names = tuple(model_names or models.names())
        unknown = [n for n in names if n not in models.names()]
        if unknown or model_name not in names:
            raise ValueError(f"unknown model(s) {unknown or [model_name]}; the zoo has "
                             f"{models.names()}")
        if measure not in explorer.measure_names():
            raise ValueError(f"unknown measure {measure!r}; choose one of "
                             f"{list(explorer.measure_names())}")
        if reduce not in explorer.REDUCTIONS:
            raise ValueError(f"reduce must be one of {list(explorer.REDUCTIONS)}, got {reduce!r}")
        self._names = names
        self._options = {"weights": weights, "epochs": epochs, "n_train": n_train,
                         "n_test": n_test, "seed": seed, "root": root, "cache": cache}
        self._warm = warm
        self._cache: dict[tuple, explorer.ModelData] = {}
        self._values: dict[tuple, dict[str, np.ndarray]] = {}
        self._flat: dict[tuple, list[str]] = {}
        self._neuron_pngs: dict[tuple, bytes] = {}
        self._quiet = 0
        self._tie = ""
        self._axes = None
        self.values: dict[str, np.ndarray] = {}
        self.last_synthesis: synthesis.Synthesis | None = None
        self.seconds = 0.0

        datasets = sorted({models.dataset_of(n) for n in names})
        dataset = models.dataset_of(model_name)
        self.dataset = w.Dropdown(options=datasets, value=dataset, description="dataset",
                                  layout=_NARROW, style=_STYLE)
        self.model = w.Dropdown(options=self._models_of(dataset), value=model_name,
                                description="model", layout=_NARROW, style=_STYLE)
        self.layers = w.SelectMultiple(description="layers", rows=5, layout=_NARROW,
                                       style=_STYLE)
        self.reduce = w.Dropdown(options=[(v, k_) for k_, v in explorer.REDUCTIONS.items()],
                                 value=reduce, description="conv neurons", layout=_NARROW,
                                 style=_STYLE)
        self.measure = w.Dropdown(options=[(v, k_) for k_, v in explorer.measure_names().items()],
                                  value=measure, description="measure", layout=_WIDE,
                                  style=_STYLE)
        self.threshold = w.FloatSlider(value=threshold, min=-1.0, max=3.0, step=0.05,
                                       description="threshold", continuous_update=False,
                                       layout=_WIDE, style=_STYLE)
        self.k = w.IntSlider(value=k, min=1, max=20, description="k", continuous_update=False,
                             layout=_WIDE, style=_STYLE)
        self.label = w.Dropdown(options=[("all classes", ALL)], value=ALL, description="class",
                                layout=_WIDE, style=_STYLE)
        self._initial_label = ALL if label is None else label
        self.site = w.Dropdown(description="site", layout=_NARROW, style=_STYLE)
        self.neuron = w.BoundedIntText(value=0, min=0, max=0, description="neuron",
                                       layout=_NARROW, style=_STYLE)
        self.top_button = w.Button(description="select the highest", icon="arrow-up",
                                   layout=w.Layout(width="220px"),
                                   tooltip="select the neuron with the highest value")
        self.n_seeds = w.IntSlider(value=8, min=1, max=16, description="seeds",
                                   continuous_update=False, layout=_NARROW, style=_STYLE)
        self.step_size = w.FloatLogSlider(value=1.0, base=10, min=-2, max=1, description="step",
                                          continuous_update=False, layout=_NARROW, style=_STYLE)
        self.d = w.FloatSlider(value=0.1, min=0.01, max=0.5, step=0.01, description="d (L∞)",
                               continuous_update=False, layout=_NARROW, style=_STYLE)
        self.follow = w.Checkbox(value=False, description="synthesise on every selection",
                                 indent=False, layout=w.Layout(width="260px"))
        self.synthesize_button = w.Button(description="synthesise", icon="magic",
                                          button_style="primary", layout=w.Layout(width="160px"))
        self.status = w.HTML(f"<i>loading {model_name}: training it or reading its checkpoint, "
                             "tracing the test inputs, profiling the training inputs...</i>")
        self.note = w.HTML()
        self.selection = w.HTML()
        self.figure = Figure(figsize=(11, 2.5), dpi=_DPI, layout="constrained")
        self.heatmap = _canvas(self.figure)
        self.heatmap.mpl_connect("button_press_event", self._on_click)
        self.figure.text(0.5, 0.5, "loading...", ha="center", va="center", fontsize=14,
                         color="gray")
        self.neuron_image = w.Image(format="png", layout=w.Layout(display="none"))
        self.synthesis_image = w.Image(format="png")
        self.synthesis_placeholder = w.HTML()
        self.synthesis_box = w.VBox([self.synthesis_placeholder])
        self.widget = w.VBox([
            w.HBox([w.VBox([self.dataset, self.model, self.layers, self.reduce]),
                    w.VBox([self.measure, self.threshold, self.k, self.label])]),
            self.status, self.heatmap, self.note,
            w.HBox([w.VBox([self.site, self.neuron, self.top_button]),
                    w.VBox([self.n_seeds, self.step_size, self.d,
                            w.HBox([self.synthesize_button, self.follow])])]),
            self.selection, self.neuron_image, self.synthesis_box,
        ])

        self.dataset.observe(self._on_dataset, names="value")
        self.model.observe(self._on_model, names="value")
        self.reduce.observe(self._on_model, names="value")
        for control in (self.layers, self.measure, self.threshold, self.k):
            control.observe(self._on_measure, names="value")
        for control in (self.label, self.site, self.neuron):
            control.observe(self._on_neuron, names="value")
        self.top_button.on_click(lambda _: self.select_highest())
        self.synthesize_button.on_click(lambda _: self.synthesize())
        if load:
            self.load()

    # ------------------------------------------------------------------ display and state

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def data(self) -> explorer.ModelData:
        """The cached data of the model shown."""
        return self._cache[(self.model.value, self.reduce.value)]

    @property
    def class_value(self) -> int | None:
        """The selected class, ``None`` for all (the class control's ``"all"``)."""
        return None if self.label.value in (ALL, None) else int(self.label.value)

    def _models_of(self, dataset: str) -> list[str]:
        return [n for n in self._names if models.dataset_of(n) == dataset]

    # ------------------------------------------------------------------------- callbacks

    def _on_dataset(self, change) -> None:
        if self._quiet:
            return
        self._quiet += 1
        try:
            self.model.options = self._models_of(change["new"])
            self.model.value = self.model.options[0]
        finally:
            self._quiet -= 1
        self.load()

    def _on_model(self, change) -> None:
        if not self._quiet:
            self.load()

    def _on_measure(self, change) -> None:
        if not self._quiet:
            self.refresh(neuron=False)

    def _on_neuron(self, change) -> None:
        if self._quiet:
            return
        if change["owner"] is self.site:
            self._quiet += 1
            try:
                self.neuron.max = self.data.acts[self.site.value].shape[1] - 1
            finally:
                self._quiet -= 1
        self._selected()

    def _on_click(self, event) -> None:
        if event.inaxes is not self._axes or event.xdata is None or self.heatmap.toolbar.mode:
            return
        cell = self._cell_at(event.xdata, event.ydata)
        if cell is not None:
            self.select(*cell)

    def _cell_at(self, x: float, y: float) -> tuple[str, int] | None:
        sites = list(self.values)
        row, index = int(np.rint(y)), int(np.rint(x))
        if 0 <= row < len(sites) and 0 <= index < len(self.values[sites[row]]):
            return sites[row], index
        return None

    def _describe(self, x: float, y: float) -> str:
        """The hover text: the cell's site, index, value (and channel, position, dead)."""
        cell = self._cell_at(x, y)
        if cell is None:
            return ""
        site, index = cell
        md = self.data
        text = f"{site}[{index}]  {self.measure.value} = {self.values[site][index]:.4g}"
        positions = (md.positions or {}).get(site, 1)
        if md.convention.reduce == "none" and positions > 1:
            channels = md.acts[site].shape[1] // positions
            text += f"  (channel {index % channels}, position {index // channels})"
        return text + ("  dead" if md.dead[site][index] else "") + "  (click to select)"

    # --------------------------------------------------------------------------- actions

    def load(self, name: str | None = None) -> None:
        """Sets up model ``name`` (default: the model control's) under the conv-neuron control's
        reduction: trains or loads it, traces the test set and profiles the training set, once
        per model and reduction; then draws. The status says "loading" meanwhile."""
        if name is not None and name != self.model.value:
            self.model.value = name  # observed: loads
            return
        name, reduce = self.model.value, self.reduce.value
        if (name, reduce) not in self._cache:
            self.status.value = (f"<i>loading {name} ({explorer.REDUCTIONS[reduce]}): training "
                                 "it or reading its checkpoint, tracing the test inputs, "
                                 "profiling the training inputs...</i>")
            self._cache[(name, reduce)] = explorer.load_model_data(name, reduce=reduce,
                                                                   **self._options)
        md = self.data
        sites = list(md.acts)
        site = self.site.value if self.site.value in sites else sites[0]
        self._quiet += 1
        try:
            self.layers.options = sites
            self.layers.value = tuple(sites)
            label = self.label.value if self.label.options[1:] else self._initial_label
            self.label.options = [("all classes", ALL)] + [
                (f"{i}: {c}", i) for i, c in enumerate(md.class_names)]
            self.label.value = ALL if label in (ALL, None) else int(label)
            self.site.options = sites
            self.site.value = site
            self.neuron.max = md.acts[site].shape[1] - 1
            self.neuron.value = min(int(self.neuron.value), self.neuron.max)
        finally:
            self._quiet -= 1
        self.figure.set_size_inches(11, 1.1 + 0.5 * max(len(sites), 3), forward=True)
        self.neuron_image.layout.display = None
        self._selected()
        if self._warm:
            self.warm()

    def _values_of(self, measure: str) -> dict[str, np.ndarray]:
        key = (self.model.value, self.reduce.value, measure, float(self.threshold.value),
               int(self.k.value), self.class_value)
        if key not in self._values:
            self._values[key] = explorer.neuron_values(self.data, measure, threshold=key[3],
                                                       k=key[4], label=key[5])
        return self._values[key]

    def refresh(self, *, neuron: bool = True) -> None:
        """Recomputes the heatmap's values from the controls and redraws the heatmap (and the
        neuron panel when ``neuron``)."""
        start = time.perf_counter()
        md = self.data
        measure = self.measure.value
        self.threshold.disabled = measure in _USES_K
        self.k.disabled = measure not in _USES_K
        self.threshold.description = "std scale" if measure in _USES_SCALE else "threshold"
        all_values = self._values_of(measure)
        shown = [s for s in all_values if s in self.layers.value] or list(all_values)
        self.values = {s: all_values[s] for s in shown}
        self._draw_heatmap(md)
        self.note.value = self._note(md, measure)
        if neuron:
            key = (md.name, md.convention.reduce, self.site.value, int(self.neuron.value),
                   self.class_value)
            if key not in self._neuron_pngs:
                self._neuron_pngs[key] = _png(self._neuron_figure(md))
            self.neuron_image.value = self._neuron_pngs[key]
        self._describe_selection(md)
        self.seconds = time.perf_counter() - start
        self._status(md)

    def warm(self, *, background: bool = True) -> None:
        """Computes every measure at the current settings once, so that the first choice of
        each in the dropdown is as quick as the rest (each compiles once); in a background
        thread by default."""
        def run():
            for measure in explorer.measure_names():
                self._values_of(measure)

        if background:
            # not a daemon: killing a thread in the middle of an XLA compilation at exit aborts
            threading.Thread(target=run, daemon=False, name="explorer-warm").start()
        else:
            run()

    def select(self, site: str, index: int) -> tuple[str, int]:
        """Selects neuron ``(site, index)``, as a click on its cell does, and redraws; returns
        it."""
        md = self.data
        if site not in md.acts:
            raise ValueError(f"site must be one of {list(md.acts)}, got {site!r}")
        if not 0 <= int(index) < md.acts[site].shape[1]:
            raise ValueError(f"index must be in [0, {md.acts[site].shape[1]}) for site "
                             f"{site!r}, got {index}")
        self._quiet += 1
        try:
            self.site.value = site
            self.neuron.max = md.acts[site].shape[1] - 1
            self.neuron.value = int(index)
        finally:
            self._quiet -= 1
        self._tie = ""
        self._selected()
        return site, int(index)

    def select_highest(self) -> tuple[str, int]:
        """Selects the neuron with the highest value of the current measure among the layers
        shown; among ties the first in layer order, then the lowest index, and the selection
        line says how many tied. Returns it."""
        best = explorer.highest(self.values)
        self.select(best.site, best.index)
        if best.ties > 1:
            self._tie = (f"picked the first (in layer order) of <b>{best.ties}</b> neurons "
                         f"tied at {best.value:.4g}; click another cell to look at the others")
            self._describe_selection(self.data)
        return best.site, best.index

    def _selected(self) -> None:
        """A new neuron, class or model: redraw; the synthesis follows (or waits for the
        button)."""
        self.refresh()
        self._show_placeholder()
        if self.follow.value:
            self.synthesize()

    def _show_placeholder(self) -> None:
        self.synthesis_placeholder.value = (
            f"<i>Press <b>synthesise</b> to raise {self.site.value}[{int(self.neuron.value)}] "
            "by DeepFault's gradient ascent from correctly classified test inputs (of the "
            "selected class): the seeds, the synthesised inputs and the model's predictions "
            "appear here.</i>")
        self.synthesis_box.children = [self.synthesis_placeholder]

    def synthesize(self) -> synthesis.Synthesis:
        """DeepFault's ascent on the selected neuron from correctly classified test inputs (of
        the selected class), shown with the model's predictions; returns the result."""
        md = self.data
        site, index = self.site.value, int(self.neuron.value)
        pool = np.flatnonzero(np.asarray(explorer.selected_rows(md, self.class_value))
                              & (md.predictions == md.labels))
        if len(pool) == 0:
            raise ValueError("no correctly classified test input to start from")
        n = min(self.n_seeds.value, len(pool))
        key = jax.random.key(self._options["seed"])
        chosen = pool[np.sort(np.asarray(jax.random.choice(key, len(pool), (n,),
                                                           replace=False)))]
        seeds = md.images[chosen]
        conv = activations.Convention("pre", md.convention.reduce)
        result = synthesis.synthesize(md.model, jnp.asarray(seeds), [(site, index)],
                                      step_size=self.step_size.value, d=self.d.value,
                                      convention=conv)
        before = md.predictions[chosen]
        after = np.asarray(result.predictions)
        titles = [f"predicted {b} → {a}" for b, a in zip(before.tolist(), after.tolist())]
        fig = plots.image_grid(seeds, np.asarray(result.inputs), n=n, titles=titles)
        fig.suptitle(f"synthesised for {site}[{index}] from {n} correctly classified seeds "
                     f"(titles: the model's prediction on the seed → on the synthesised input); "
                     f"mean pre-activation {float(result.before.mean()):.3f} → "
                     f"{float(result.after.mean()):.3f}", fontsize=10)
        self.synthesis_image.value = _png(fig)
        self.last_synthesis = result
        small = md.convention.reduce != "none" and (md.positions or {}).get(site, 1) > 1
        hint = w.HTML("<i>A conv channel's neuron is its mean (or max) over every position: one "
                      "step of at most d per pixel moves it little. Choose <b>conv neurons: per "
                      "position</b> to raise one unit.</i>") if small else None
        self.synthesis_box.children = [self.synthesis_image] + ([hint] if hint else [])
        return result

    # ------------------------------------------------------------------------ the texts

    def _status(self, md: explorer.ModelData) -> None:
        n = int(np.asarray(explorer.selected_rows(md, self.class_value)).sum())
        mean = np.concatenate(list(self.values.values())).mean()
        dead = sum(int(md.dead[s].sum()) for s in self.values)
        total = sum(len(v) for v in self.values.values())
        self.status.value = (
            f"<b>{md.name}</b>: test accuracy {md.test_accuracy:.3f}; {n} test inputs; "
            f"mean <b>{self.measure.value}</b> over the {total} neurons shown {mean:.3g}; "
            f"{dead} dead (never &gt; 0 on the training inputs, marked x); updated in "
            f"{self.seconds:.2f} s. Hover over a cell to read it, click it to select it.")

    def _note(self, md: explorer.ModelData, measure: str) -> str:
        if measure in explorer.COVERAGE or measure in explorer.STATISTICS:
            return ""
        key = (md.name, md.convention.reduce, float(self.threshold.value), self.class_value)
        if key not in self._flat:
            self._flat[key] = explorer.always_active(md, threshold=key[2], label=key[3])
        flat = [s for s in self._flat[key] if s in self.values]
        if not flat:
            return ""
        advice = ("choose <b>conv neurons: per position</b> (the channel max rarely helps) or "
                  "raise the threshold" if md.convention.reduce != "none"
                  else "raise the threshold")
        return (f"<b>{', '.join(flat)}: one flat colour.</b> Every neuron there is above the "
                f"threshold {self.threshold.value:g} on every selected test input (after ReLU a "
                f"conv channel's {md.convention.reduce} over its positions is practically "
                "never 0), "
                f"so all have the same hit spectrum and the same {measure} score. To tell them "
                f"apart, {advice}.")

    def _describe_selection(self, md: explorer.ModelData) -> None:
        site, index = self.site.value, int(self.neuron.value)
        activity = explorer.neuron_activity(md, site, index, label=self.class_value)
        text = f"<b>selected {site}[{index}]</b>"
        if site in self.values:
            text += f": {self.measure.value} = {self.values[site][index]:.4g}"
        else:
            text += (" <span style='color:red'>(its layer is hidden: tick it under "
                     "<i>layers</i> to see it in the heatmap)</span>")
        if activity.active == 0:
            text += (f"; <b>dead</b> on these test inputs: never above 0 on any of the "
                     f"{activity.total}" + (" (nor on the training inputs)"
                                            if activity.dead_on_training else ""))
        else:
            text += (f"; active (&gt; 0) on {activity.active} of {activity.total} test inputs, "
                     f"highest {activity.maximum:.3g}")
        self.selection.value = text + (f". {self._tie}" if self._tie else "")

    def summary(self) -> list[dict]:
        """One row per site shown: its neurons, dead neurons, and the current measure's mean
        and maximum (for the notebook's results table)."""
        md = self.data
        return [{"model": md.name, "site": s, "neurons": len(v), "dead": int(md.dead[s].sum()),
                 "measure": self.measure.value, "mean": float(v.mean()), "max": float(v.max())}
                for s, v in self.values.items()]

    def heatmap_png(self) -> bytes:
        """The heatmap as shown, as PNG bytes."""
        return _png(self.figure)

    # --------------------------------------------------------------------------- figures

    def _draw_heatmap(self, md: explorer.ModelData) -> None:
        site, index = self.site.value, int(self.neuron.value)
        hidden = site not in self.values
        self.figure.clear()
        ax = self.figure.subplots()
        title = f"{md.name}: {self.measure.label}"
        plots.layer_heatmap(self.values, title=title, ax=ax, label=self.measure.value)
        for row, s in enumerate(self.values):
            dead = np.flatnonzero(md.dead[s])
            ax.plot(dead, np.full(len(dead), row), "x", color="white", markersize=4,
                    markeredgewidth=1.0)
        if hidden:
            ax.set_title(f"{title}\nselected {site}[{index}] is in a hidden layer",
                         color="darkred")
        else:
            row = list(self.values).index(site)
            for colour, width in (("white", 5.0), ("red", 2.5)):
                ax.add_patch(Rectangle((index - 0.5, row - 0.5), 1, 1, fill=False,
                                       edgecolor=colour, linewidth=width))
            ax.plot([index], [-0.5], "v", color="red", markersize=11, clip_on=False,
                    markeredgecolor="white")
            ax.plot([-0.5], [row], ">", color="red", markersize=11, clip_on=False,
                    markeredgecolor="white")
        ax.format_coord = self._describe
        for image in ax.images:
            image.mouseover = False  # the hover text already gives the value
        self._axes = ax
        self.heatmap.draw_idle()

    def _neuron_figure(self, md: explorer.ModelData):
        """The histogram and the top inputs, as one mosaic in two axes (quick to draw)."""
        site, index, label = self.site.value, int(self.neuron.value), self.class_value
        rows = np.asarray(explorer.selected_rows(md, label))
        passed = md.predictions == md.labels
        values = np.asarray(md.acts[site])[:, index]  # on the host: no compile per neuron
        activity = explorer.neuron_activity(md, site, index, label=label)
        fig = Figure(figsize=(12, 3.8))
        ax = fig.add_axes((0.05, 0.15, 0.3, 0.72))
        bins = np.histogram_bin_edges(values[rows], bins=30)
        ax.hist(values[rows & passed], bins=bins, alpha=0.6, density=True, histtype="stepfilled",
                label=f"passing ({int((rows & passed).sum())})")
        ax.hist(values[rows & ~passed], bins=bins, alpha=0.6, density=True, histtype="stepfilled",
                label=f"failing ({int((rows & ~passed).sum())})")
        ax.set_xlabel(f"{site}[{index}] activation")
        ax.set_ylabel("density")
        ax.legend(fontsize=9)
        ax.set_title(f"{site}[{index}] on passing vs failing test inputs", fontsize=10)
        right = fig.add_axes((0.4, 0.03, 0.59, 0.83))
        right.axis("off")
        if activity.active == 0:
            right.text(0.5, 0.5, f"{site}[{index}] is dead on these test inputs:\nnever above "
                       f"0 on any of the {activity.total}"
                       + ("\n(nor on the training inputs)" if activity.dead_on_training else "")
                       + ",\nso no input activates it more than another.",
                       ha="center", va="center", fontsize=12)
            return fig
        top = explorer.top_activating(md, site, index, n=8, label=label)
        columns, (h, w, c) = 4, md.images.shape[1:]
        gap, pad = int(0.7 * h), int(0.8 * w)  # room for the two-line titles above, beside
        mosaic = np.ones((2 * (gap + h), columns * (w + pad), c), np.float32)
        for j, i in enumerate(top):
            y, x = (j // columns) * (gap + h) + gap, (j % columns) * (w + pad)
            mosaic[y:y + h, x:x + w] = md.images[i]
            wrong = md.labels[i] != md.predictions[i]
            right.text(x + w / 2, y - 1, f"activation {values[i]:.3g}\nlabel {md.labels[i]} → "
                       f"predicted {md.predictions[i]}", ha="center", va="bottom", fontsize=9,
                       color="darkred" if wrong else "black")
        right.imshow(mosaic[..., 0] if c == 1 else mosaic, cmap="gray", vmin=0, vmax=1,
                     interpolation="nearest")
        fig.text(0.4, 0.985, f"the {len(top)} test inputs on which {site}[{index}] is highest\n"
                 "(its activation there, the true label → the model's prediction; red: "
                 "misclassified)", ha="left", va="top", fontsize=10)
        return fig
