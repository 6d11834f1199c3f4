"""The neuron explorer's data: a model's test activations, training profile and dead neurons,
and the per-neuron numbers its heatmap shows.

:func:`load_model_data` does the heavy work once per model (train or load it, trace the test
inputs, profile the training inputs); :func:`neuron_values` then turns the cached activations
into one number per neuron for any measure: a coverage criterion (NC, KMNC, NBC, SNAC, TKNC;
Pei et al. SOSP 2017, Ma et al. ASE 2018), a suspiciousness measure of the hit spectrum
(Eniser et al. FASE 2019) or a plain statistic. The UI over these is
:class:`workbench.widgets.Explorer`.

The neurons are the post-activation values, conv channels by their spatial mean (convention
``"post"``) or, on request, their maximum or every position (``reduce``), so the heatmap, the
histogram and the top-activating inputs read the same numbers. A test input "passes" when the
model classifies it correctly. :func:`neuron_activity`, :func:`highest` and
:func:`always_active` say what the view should tell about a neuron or a flat row.
"""

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int, Real

from workbench import (
    activations,
    coverage,
    models,
    passes,
    profiles,
    spectra,
    suspiciousness,
    validation,
)
from workbench.experiments import common

__all__ = [
    "COVERAGE",
    "REDUCTIONS",
    "STATISTICS",
    "Activity",
    "Highest",
    "ModelData",
    "always_active",
    "highest",
    "load_model_data",
    "measure_names",
    "neuron_activity",
    "neuron_values",
    "selected_rows",
    "top_activating",
]

COVERAGE = {
    "nc": "NC: neuron coverage (value > threshold)",
    "kmnc": "KMNC: k-multisection coverage (fraction of k sections)",
    "nbc": "NBC: neuron boundary coverage (fraction of 2 corners)",
    "snac": "SNAC: strong neuron activation coverage",
    "tknc": "TKNC: top-k neuron coverage",
}
STATISTICS = {
    "mean": "mean activation",
    "rate": "activation rate (fraction of inputs > threshold)",
}
REDUCTIONS = {
    "mean": "channel mean",
    "max": "channel max",
    "none": "per position",
}
_BATCH = 500


def measure_names() -> dict[str, str]:
    """Every measure the explorer offers: ``{key: description}``, coverage criteria first,
    then statistics, then the suspiciousness measures.

    Example:
        >>> list(measure_names())[:3]
        ['nc', 'kmnc', 'nbc']
    """
    named = {**COVERAGE, **STATISTICS}
    named.update({name: f"suspiciousness: {name}" for name in suspiciousness.MEASURES})
    return named


class ModelData(NamedTuple):
    """What the explorer caches per model: computed once, read by every control change."""

    name: str
    model: object  # the trained nnx.Module
    test_accuracy: float
    images: np.ndarray  # shape=(n, h, w, c): the test inputs
    labels: np.ndarray  # shape=(n,), dtype=int32
    predictions: np.ndarray  # shape=(n,), dtype=int32
    acts: dict  # site -> jax.Array shape=(n, neurons): post-activation, channel mean
    profile: profiles.Profile  # over the training inputs
    dead: dict  # site -> np.ndarray shape=(neurons,), dtype=bool: never > 0 on training data
    class_names: tuple
    convention: activations.Convention = activations.CONVENTIONS["post"]
    positions: dict | None = None  # site -> positions per channel (1: dense); None: all 1


def load_model_data(name: str, *, weights: str = "trained", epochs: int | None = 1,
                    n_train: int | None = 5000, n_test: int | None = 2000, seed: int = 0,
                    root=None, cache=None, reduce: str = "mean") -> ModelData:
    """Loads zoo model ``name`` and computes everything the explorer reads.

    Args:
        name: a zoo model (``models.names()``).
        weights, epochs, n_train, seed: passed to
            :func:`workbench.experiments.common.load_model`; the profile and dead neurons come
            from the first ``n_train`` training inputs (``None``: all of them).
        n_test: the first ``n_test`` test inputs (``None``: all).
        root, cache: the data and checkpoint folders.
        reduce: how a conv map becomes neurons (a key of :data:`REDUCTIONS`): ``"mean"``
            (one neuron per channel, as DeepGauge and DeepFault), ``"max"`` or ``"none"``
            (every position of every channel).

    Returns:
        A :class:`ModelData`.
    """
    if name not in models.names():
        raise ValueError(f"unknown model {name!r}; the zoo has {models.names()}")
    conv = activations.Convention("post", validation.choice(reduce, "reduce", tuple(REDUCTIONS)))
    dataset = models.dataset_of(name)
    result = common.load_model(name, weights=weights, epochs=epochs, n_train=n_train, seed=seed,
                               cache=cache, root=root)
    train_images = common.load_data(dataset, "train", n=n_train, root=root).images
    test = common.load_data(dataset, "test", n=n_test, root=root)
    traced = passes.model_trace(result.model, test.images, convention=conv, batch_size=_BATCH)
    predictions = np.argmax(traced.logits, axis=-1).astype(np.int32)
    acts = {site: jnp.asarray(value) for site, value in traced.acts.items()}
    profile = passes.model_profile(result.model, train_images, convention=conv,
                                   batch_size=_BATCH)
    shape = test.images.shape[1:]
    channels = activations.neuron_counts(result.model, shape, convention="post")
    every = activations.neuron_counts(result.model, shape,
                                      convention=activations.Convention("post", "none"))
    positions = {site: every[site] // channels[site] for site in channels}
    return ModelData(name, result.model, float(result.test_accuracy), test.images,
                     test.labels.astype(np.int32), predictions, acts, profile,
                     profiles.dead_neurons(profile), test.class_names, conv, positions)


def selected_rows(md: ModelData, label: int | None) -> Bool[Array, " n"]:
    """The test inputs of true class ``label`` (all of them for ``None``), as a mask."""
    if label is None:
        return jnp.ones(len(md.labels), bool)
    return jnp.asarray(md.labels == label)


def neuron_values(md: ModelData, measure: str, *, threshold: float = 0.0, k: int = 2,
                  label: int | None = None) -> dict[str, np.ndarray]:
    """One number per neuron for the heatmap, over the cached test inputs (of class ``label``).

    Coverage criteria give the covered fraction of each neuron's sections (NC, SNAC, TKNC: 0
    or 1; KMNC: of ``k`` sections; NBC: of its two corners); ``threshold`` is NC's threshold
    and NBC's / SNAC's standard-deviation multiple; ``k`` is KMNC's sections and TKNC's top
    ``k``. ``"mean"`` is the mean activation and ``"rate"`` the fraction of inputs above
    ``threshold``. A suspiciousness measure scores the hit spectrum with "activated" meaning
    above ``threshold`` and "failing" misclassified.

    Returns:
        ``{site: float64[neurons]}`` in layer order.
    """
    if measure not in measure_names():
        raise ValueError(f"unknown measure {measure!r}; choose one of {list(measure_names())}")
    rows = selected_rows(md, label)
    acts = md.acts
    if measure == "nc":
        masks = coverage.neuron_coverage(acts, threshold=threshold, minmax_per_input=False,
                                         mask=rows)
    elif measure == "kmnc":
        masks = coverage.k_multisection_coverage(acts, md.profile, k=k, mask=rows)
    elif measure == "nbc":
        masks = coverage.neuron_boundary_coverage(acts, md.profile, std_multiple=threshold,
                                                  mask=rows)
    elif measure == "snac":
        masks = coverage.strong_neuron_activation_coverage(acts, md.profile,
                                                           std_multiple=threshold, mask=rows)
    elif measure == "tknc":
        masks = coverage.top_k_neuron_coverage(acts, k=k, mask=rows)
    elif measure in STATISTICS:
        means, rates = _mean_and_rate(dict(acts), rows, jnp.float32(threshold))
        masks = means if measure == "mean" else rates
    else:
        passed = jnp.asarray(md.predictions == md.labels)
        spectrum = spectra.hit_spectrum(acts, passed, threshold=threshold, where=rows)
        masks = _jitted(measure)(spectrum)
    # a dict leaving jax.jit has sorted keys: back to layer order
    return {site: np.asarray(masks[site], np.float64).reshape(acts[site].shape[1], -1).mean(1)
            for site in acts}


@functools.cache
def _jitted(measure: str):
    """A suspiciousness measure compiled once as a whole (eagerly, each of its operations
    would compile on first use)."""
    return jax.jit(suspiciousness.measure(measure))


@jax.jit
def _mean_and_rate(acts, rows, threshold):
    count = jnp.maximum(rows.sum(), 1)
    mean = {s: jnp.where(rows[:, None], v, 0.0).sum(0) / count for s, v in acts.items()}
    rate = {s: ((v > threshold) & rows[:, None]).sum(0) / count for s, v in acts.items()}
    return mean, rate


def top_activating(md: ModelData, site: str, index: int, *, n: int = 8,
                   label: int | None = None) -> Int[np.ndarray, " m"]:
    """Indices of the ``n`` test inputs (of class ``label``) on which neuron ``(site, index)``
    is highest, highest first (ties: the earlier input first)."""
    values = np.asarray(md.acts[site])[:, index].astype(np.float64)
    values = np.where(np.asarray(selected_rows(md, label)), values, -np.inf)
    order = np.argsort(-values, kind="stable")[:n]
    return order[np.isfinite(values[order])]


class Activity(NamedTuple):
    """How often one neuron is active (above 0) on the selected test inputs."""

    active: int  # selected test inputs on which it is above 0
    total: int  # selected test inputs
    maximum: float  # its highest value on them
    dead_on_training: bool  # never above 0 on the training inputs


def neuron_activity(md: ModelData, site: str, index: int, *,
                    label: int | None = None) -> Activity:
    """Whether neuron ``(site, index)`` is ever active on the test inputs (of class ``label``):
    a neuron with ``active == 0`` has no top-activating inputs worth showing (they would all
    read the same value).

    Example:
        >>> md = ModelData("toy", None, 1.0, np.zeros((2, 1, 1, 1)), np.array([0, 1]),
        ...                np.array([0, 1]), {"fc": jnp.array([[0.0, 2.0], [0.0, 0.5]])},
        ...                None, {"fc": np.array([True, False])}, ("a", "b"))
        >>> neuron_activity(md, "fc", 0), neuron_activity(md, "fc", 1, label=1).active
        (Activity(active=0, total=2, maximum=0.0, dead_on_training=True), 1)
    """
    rows = np.asarray(selected_rows(md, label))
    values = np.asarray(md.acts[site])[:, index][rows]
    return Activity(int((values > 0).sum()), int(rows.sum()),
                    float(values.max()) if len(values) else 0.0, bool(md.dead[site][index]))


class Highest(NamedTuple):
    """The neuron with the highest value, and how many neurons share that value."""

    site: str
    index: int
    value: float
    ties: int  # neurons with exactly this value (1: no tie)


def highest(values: Mapping[str, Real[np.ndarray, " neurons"]]) -> Highest:
    """The neuron with the highest value; among ties (common under a 0/1 measure such as NC)
    the first in layer order, then the lowest index, so the choice is deterministic, and
    ``ties`` says how many neurons it was picked from.

    Example:
        >>> highest({"a": np.array([0.0, 1.0]), "b": np.array([1.0, 0.5])})
        Highest(site='a', index=1, value=1.0, ties=2)
    """
    if not values:
        raise ValueError("values has no sites")
    sites = list(values)
    flat = np.concatenate([np.asarray(values[s], np.float64).reshape(-1) for s in sites])
    starts = np.cumsum([0] + [np.size(values[s]) for s in sites])
    best = int(np.argmax(flat))  # the first of the maxima
    row = int(np.searchsorted(starts, best, side="right")) - 1
    return Highest(sites[row], best - int(starts[row]), float(flat[best]),
                   int((flat == flat[best]).sum()))


def always_active(md: ModelData, *, threshold: float = 0.0,
                  label: int | None = None) -> list[str]:
    """The sites whose every neuron is above ``threshold`` on every selected test input.

    There every neuron has the same hit spectrum (active on all passing and all failing
    inputs), so every suspiciousness measure (Eniser et al. FASE 2019, section 3.2) gives the
    whole row one score. A ReLU conv channel's spatial mean is practically never 0, so the
    conv rows of a channel-mean convention are such rows; every position
    (``reduce="none"``) or a higher threshold separates them, the channel max rarely does.

    Example:
        >>> md = ModelData("toy", None, 1.0, np.zeros((2, 1, 1, 1)), np.array([0, 1]),
        ...                np.array([0, 1]), {"c": jnp.ones((2, 3)), "fc": jnp.eye(2)},
        ...                None, {}, ("a", "b"))
        >>> always_active(md), always_active(md, threshold=1.0)
        (['c'], [])
    """
    rows = selected_rows(md, label)
    _, rates = _mean_and_rate(dict(md.acts), rows, jnp.float32(threshold))
    return [s for s in md.acts if bool(rows.any()) and bool((rates[s] >= 1.0).all())]
