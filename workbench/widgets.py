"""The interactive neuron explorer: ipywidgets controls over a heatmap of every neuron.

``Explorer`` shows one row per layer and one cell per neuron, coloured by a coverage criterion
(NC, KMNC, NBC, SNAC, TKNC; Pei et al. SOSP 2017, Ma et al. ASE 2018), a suspiciousness measure
of the hit spectrum (Tarantula, Ochiai, D* and the rest of :mod:`workbench.suspiciousness`;
Eniser et al. FASE 2019) or a plain statistic, with dead neurons (never above 0 on the training
inputs) crossed out. Selecting a neuron shows its activation histogram on passing versus failing
test inputs, the test inputs that activate it most, and, on demand, inputs synthesised for it
by DeepFault's gradient ascent with the model's predictions.

The numbers come from :mod:`workbench.experiments.explorer` (the data each model caches and
the per-neuron values of every measure); this module is only the UI over them. Synthesis
raises the neuron's pre-activation value, as DeepFault does, because a post-ReLU value has no
gradient while the neuron is off.

All heavy work is done once per model and cached: training (or loading the checkpoint), the
activations of every test input and the training profile. A control change then only
re-evaluates one jitted criterion over the cached activations (thresholds and the class are
traced values, so nothing recompiles) and redraws, well under a second on MNIST.

Example (in a notebook)::

    from workbench import widgets
    explorer = widgets.Explorer("lenet5", epochs=1, n_train=5000, n_test=2000)
    explorer            # displays the controls and the figures
    explorer.measure.value = "ochiai"   # the same as choosing it in the dropdown
"""

import io
import threading
import time
from collections.abc import Sequence

import ipywidgets as w
import jax
import jax.numpy as jnp
import numpy as np

from workbench import models, plots, synthesis
from workbench.experiments import explorer

__all__ = ["Explorer"]

_USES_K = ("kmnc", "tknc")
_USES_SCALE = ("nbc", "snac")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class Explorer:
    """The explorer's widgets, their cached data and the figures they drive.

    Controls (ipywidgets, each an attribute you may set from Python): ``dataset``, ``model``,
    ``layers`` (which sites to show), ``measure``, ``threshold`` (NC / activation threshold, or
    NBC's and SNAC's std multiple), ``k`` (KMNC's sections, TKNC's k), ``label`` (a class, or
    ``None`` for all test inputs); the selected neuron ``site`` and ``neuron``; and for synthesis
    ``n_seeds``, ``step_size``, ``d`` and the ``synthesize_button``.

    The figures are ``widgets.Image`` PNGs: ``heatmap_image``, ``neuron_image``,
    ``synthesis_image``. The numbers behind the heatmap are ``values`` (``{site: [neurons]}``),
    and the last synthesis is ``last_synthesis``; ``seconds`` is the time the last control
    change took.

    Args:
        model_name: the model shown first.
        model_names: the models offered (default: every zoo model of every dataset).
        weights, epochs, n_train, n_test, seed, root, cache: see
            :func:`workbench.experiments.explorer.load_model_data`.
        measure, threshold, k, label: the controls' initial values.
        warm: compile every measure in a background thread once the model is loaded
            (:meth:`warm`).
    """

    def __init__(self, model_name: str = "lenet5", *, model_names: Sequence[str] | None = None,
                 weights: str = "trained", epochs: int | None = 1, n_train: int | None = 5000,
                 n_test: int | None = 2000, seed: int = 0, root=None, cache=None,
                 measure: str = "nc", threshold: float = 0.0, k: int = 2, label: int | None = None,
                 warm: bool = False):
        names = tuple(model_names or models.names())
        unknown = [n for n in names if n not in models.names()]
        if unknown or model_name not in names:
            raise ValueError(f"unknown model(s) {unknown or [model_name]}; the zoo has "
                             f"{models.names()}")
        if measure not in explorer.measure_names():
            raise ValueError(f"unknown measure {measure!r}; choose one of "
                             f"{list(explorer.measure_names())}")
        self._names = names
        self._options = {"weights": weights, "epochs": epochs, "n_train": n_train,
                         "n_test": n_test, "seed": seed, "root": root, "cache": cache}
        self._cache: dict[str, explorer.ModelData] = {}
        self._values: dict[tuple, dict[str, np.ndarray]] = {}
        self._neuron_pngs: dict[tuple, bytes] = {}
        self._quiet = 0
        self.values: dict[str, np.ndarray] = {}
        self.last_synthesis: synthesis.Synthesis | None = None
        self.seconds = 0.0

        datasets = sorted({models.dataset_of(n) for n in names})
        dataset = models.dataset_of(model_name)
        layout = w.Layout(width="320px")
        style = {"description_width": "80px"}
        self.dataset = w.Dropdown(options=datasets, value=dataset, description="dataset",
                                  layout=layout, style=style)
        self.model = w.Dropdown(options=self._models_of(dataset), value=model_name,
                                description="model", layout=layout, style=style)
        self.layers = w.SelectMultiple(description="layers", rows=5, layout=layout, style=style)
        self.measure = w.Dropdown(options=[(v, k_) for k_, v in explorer.measure_names().items()],
                                  value=measure, description="measure",
                                  layout=w.Layout(width="420px"), style=style)
        self.threshold = w.FloatSlider(value=threshold, min=-1.0, max=3.0, step=0.05,
                                       description="threshold", continuous_update=False,
                                       layout=layout, style=style)
        self.k = w.IntSlider(value=k, min=1, max=20, description="k", continuous_update=False,
                             layout=layout, style=style)
        self.label = w.Dropdown(description="class", layout=layout, style=style)
        self.site = w.Dropdown(description="site", layout=layout, style=style)
        self.neuron = w.BoundedIntText(value=0, min=0, max=0, description="neuron",
                                       layout=layout, style=style)
        self.top_button = w.Button(description="select the highest", icon="arrow-up")
        self.n_seeds = w.IntSlider(value=8, min=1, max=16, description="seeds",
                                   continuous_update=False, layout=layout, style=style)
        self.step_size = w.FloatLogSlider(value=1.0, base=10, min=-2, max=1, description="step",
                                          continuous_update=False, layout=layout, style=style)
        self.d = w.FloatSlider(value=0.1, min=0.01, max=0.5, step=0.01, description="d (L∞)",
                               continuous_update=False, layout=layout, style=style)
        self.synthesize_button = w.Button(description="synthesise", icon="magic",
                                          button_style="primary")
        self.status = w.HTML()
        self.heatmap_image = w.Image(format="png")
        self.neuron_image = w.Image(format="png")
        self.synthesis_image = w.Image(format="png")
        self.widget = w.VBox([
            w.HBox([w.VBox([self.dataset, self.model, self.layers]),
                    w.VBox([self.measure, self.threshold, self.k, self.label])]),
            self.status, self.heatmap_image,
            w.HBox([w.VBox([self.site, self.neuron, self.top_button]),
                    w.VBox([self.n_seeds, self.step_size, self.d, self.synthesize_button])]),
            self.neuron_image, self.synthesis_image,
        ])

        self.dataset.observe(self._on_dataset, names="value")
        self.model.observe(self._on_model, names="value")
        for control in (self.layers, self.measure, self.threshold, self.k):
            control.observe(self._on_measure, names="value")
        self.label.observe(self._on_neuron, names="value")
        for control in (self.site, self.neuron):
            control.observe(self._on_neuron, names="value")
        self.top_button.on_click(lambda _: self.select_highest())
        self.synthesize_button.on_click(lambda _: self.synthesize())
        self._load(model_name)
        if warm:
            self.warm()

    # ------------------------------------------------------------------ display and state

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def data(self) -> explorer.ModelData:
        """The cached data of the model shown."""
        return self._cache[self.model.value]

    def _models_of(self, dataset: str) -> list[str]:
        return [n for n in self._names if models.dataset_of(n) == dataset]

    def _data(self, name: str) -> explorer.ModelData:
        if name not in self._cache:
            self._cache[name] = explorer.load_model_data(name, **self._options)
        return self._cache[name]

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
        self._load(self.model.value)

    def _on_model(self, change) -> None:
        if not self._quiet:
            self._load(change["new"])

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
        self.refresh()

    def _load(self, name: str) -> None:
        self.status.value = f"<i>loading {name} (training it if not cached)...</i>"
        md = self._data(name)
        sites = list(md.acts)
        self._quiet += 1
        try:
            self.layers.options = sites
            self.layers.value = tuple(sites)
            self.label.options = [("all", None)] + [
                (f"{i}: {c}", i) for i, c in enumerate(md.class_names)]
            self.label.value = None
            self.site.options = sites
            self.site.value = sites[0]
            self.neuron.max = md.acts[sites[0]].shape[1] - 1
            self.neuron.value = 0
        finally:
            self._quiet -= 1
        self.refresh()

    # --------------------------------------------------------------------------- actions

    def _values_of(self, measure: str) -> dict[str, np.ndarray]:
        key = (self.model.value, measure, float(self.threshold.value), int(self.k.value),
               self.label.value)
        if key not in self._values:
            self._values[key] = explorer.neuron_values(self.data, measure, threshold=key[2],
                                                       k=key[3], label=key[4])
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
        self.heatmap_image.value = _png(self._heatmap_figure(md))
        if neuron:
            key = (md.name, self.site.value, int(self.neuron.value), self.label.value)
            if key not in self._neuron_pngs:
                self._neuron_pngs[key] = _png(self._neuron_figure(md))
            self.neuron_image.value = self._neuron_pngs[key]
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

    def _status(self, md: explorer.ModelData) -> None:
        n = int(np.asarray(explorer.selected_rows(md, self.label.value)).sum())
        mean = np.concatenate(list(self.values.values())).mean()
        dead = sum(int(md.dead[s].sum()) for s in self.values)
        total = sum(len(v) for v in self.values.values())
        self.status.value = (
            f"<b>{md.name}</b>: test accuracy {md.test_accuracy:.3f}; {n} test inputs; "
            f"mean <b>{self.measure.value}</b> over the {total} neurons shown {mean:.3g}; "
            f"{dead} dead "
            f"(never &gt; 0 on the training inputs, marked x); updated in "
            f"{self.seconds:.2f} s")

    def summary(self) -> list[dict]:
        """One row per site shown: its neurons, dead neurons, and the current measure's mean
        and maximum (for the notebook's results table)."""
        md = self.data
        return [{"model": md.name, "site": s, "neurons": len(v), "dead": int(md.dead[s].sum()),
                 "measure": self.measure.value, "mean": float(v.mean()), "max": float(v.max())}
                for s, v in self.values.items()]

    def select_highest(self) -> tuple[str, int]:
        """Selects the neuron with the highest value of the current measure (first in layer
        order on ties) and returns it."""
        best = max(((float(v.max()), -i, s, int(np.argmax(v)))
                    for i, (s, v) in enumerate(self.values.items())))
        site, index = best[2], best[3]
        self._quiet += 1
        try:
            self.site.value = site
            self.neuron.max = self.data.acts[site].shape[1] - 1
            self.neuron.value = index
        finally:
            self._quiet -= 1
        self.refresh()
        return site, index

    def synthesize(self) -> synthesis.Synthesis:
        """DeepFault's ascent on the selected neuron from correctly classified test inputs (of
        the selected class), shown with the model's predictions; returns the result."""
        md = self.data
        site, index = self.site.value, int(self.neuron.value)
        pool = np.flatnonzero(np.asarray(explorer.selected_rows(md, self.label.value))
                              & (md.predictions == md.labels))
        if len(pool) == 0:
            raise ValueError("no correctly classified test input to start from")
        n = min(self.n_seeds.value, len(pool))
        key = jax.random.key(self._options["seed"])
        seeds = md.images[pool[np.sort(np.asarray(jax.random.choice(key, len(pool), (n,),
                                                                    replace=False)))]]
        result = synthesis.synthesize(md.model, jnp.asarray(seeds), [(site, index)],
                                      step_size=self.step_size.value, d=self.d.value)
        before = np.asarray(jnp.argmax(md.model(jnp.asarray(seeds)), axis=-1))
        after = np.asarray(result.predictions)
        titles = [f"{b}→{a}" for b, a in zip(before.tolist(), after.tolist())]
        fig = plots.image_grid(seeds, np.asarray(result.inputs), n=n, titles=titles)
        fig.suptitle(f"synthesised for {site}[{index}] (prediction seed→synthesised); "
                     f"pre-activation {float(result.before.mean()):.3f} → "
                     f"{float(result.after.mean()):.3f}", fontsize=9)
        self.synthesis_image.value = _png(fig)
        self.last_synthesis = result
        return result

    # --------------------------------------------------------------------------- figures

    def _heatmap_figure(self, md: explorer.ModelData):
        site, index = self.site.value, int(self.neuron.value)
        fig = plots.layer_heatmap(self.values, title=f"{md.name}: {self.measure.label}",
                                  marked=[(site, index)] if site in self.values else [],
                                  label=self.measure.value)
        ax = fig.axes[0]
        for row, s in enumerate(self.values):
            dead = np.flatnonzero(md.dead[s])
            ax.plot(dead, np.full(len(dead), row), "x", color="white", markersize=4,
                    markeredgewidth=1.0)
        return fig

    def _neuron_figure(self, md: explorer.ModelData):
        from matplotlib.figure import Figure

        site, index, label = self.site.value, int(self.neuron.value), self.label.value
        rows = np.asarray(explorer.selected_rows(md, label))
        passed = md.predictions == md.labels
        values = np.asarray(md.acts[site][:, index])
        top = explorer.top_activating(md, site, index, n=8, label=label)
        fig = Figure(figsize=(11, 2.6), layout="constrained")
        columns = 4
        grid = fig.add_gridspec(2, 2 + columns)
        ax = fig.add_subplot(grid[:, :2])
        bins = np.histogram_bin_edges(values[rows], bins=30)
        ax.hist(values[rows & passed], bins=bins, alpha=0.6, density=True,
                label=f"passing ({int((rows & passed).sum())})")
        ax.hist(values[rows & ~passed], bins=bins, alpha=0.6, density=True,
                label=f"failing ({int((rows & ~passed).sum())})")
        ax.set_xlabel(f"{site}[{index}] activation")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        ax.set_title(f"{site}[{index}] on passing vs failing inputs", fontsize=9)
        for j, i in enumerate(top):
            image_ax = fig.add_subplot(grid[j // columns, 2 + j % columns])
            image = md.images[i]
            image_ax.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                            cmap="gray", vmin=0, vmax=1)
            image_ax.set_xticks([])
            image_ax.set_yticks([])
            image_ax.set_title(f"{values[i]:.2f}: {md.labels[i]}→{md.predictions[i]}",
                               fontsize=7)
        return fig
