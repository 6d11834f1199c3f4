"""The neuron explorer's data: a model's test activations, training profile and dead neurons,
and the per-neuron numbers its heatmap shows.

:func:`load_model_data` does the heavy work once per model (train or load it, trace the test
inputs, profile the training inputs); :func:`neuron_values` then turns the cached activations
into one number per neuron for any measure: a coverage criterion (NC, KMNC, NBC, SNAC, TKNC;
Pei et al. SOSP 2017, Ma et al. ASE 2018), a suspiciousness measure of the hit spectrum
(Eniser et al. FASE 2019) or a plain statistic. The UI over these is
:class:`workbench.widgets.Explorer`.

The neurons are the post-activation values, conv channels by their spatial mean (convention
``"post"``), so the heatmap, the histogram and the top-activating inputs read the same numbers.
A test input "passes" when the model classifies it correctly.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int

from workbench import coverage, models, passes, profiles, spectra, suspiciousness
from workbench.experiments import common

__all__ = [
    "COVERAGE",
    "STATISTICS",
    "ModelData",
    "load_model_data",
    "measure_names",
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


def load_model_data(name: str, *, weights: str = "trained", epochs: int | None = 1,
                    n_train: int | None = 5000, n_test: int | None = 2000, seed: int = 0,
                    root=None, cache=None) -> ModelData:
    """Loads zoo model ``name`` and computes everything the explorer reads.

    Args:
        name: a zoo model (``models.names()``).
        weights, epochs, n_train, seed: passed to
            :func:`workbench.experiments.common.load_model`; the profile and dead neurons come
            from the first ``n_train`` training inputs (``None``: all of them).
        n_test: the first ``n_test`` test inputs (``None``: all).
        root, cache: the data and checkpoint folders.

    Returns:
        A :class:`ModelData`.
    """
    if name not in models.names():
        raise ValueError(f"unknown model {name!r}; the zoo has {models.names()}")
    dataset = models.dataset_of(name)
    result = common.load_model(name, weights=weights, epochs=epochs, n_train=n_train, seed=seed,
                               cache=cache, root=root)
    train_images = common.load_data(dataset, "train", n=n_train, root=root).images
    test = common.load_data(dataset, "test", n=n_test, root=root)
    traced = passes.model_trace(result.model, test.images, convention="post", batch_size=_BATCH)
    predictions = np.argmax(traced.logits, axis=-1).astype(np.int32)
    acts = {site: jnp.asarray(value) for site, value in traced.acts.items()}
    profile = passes.model_profile(result.model, train_images, convention="post",
                                   batch_size=_BATCH)
    return ModelData(name, result.model, float(result.test_accuracy), test.images,
                     test.labels.astype(np.int32), predictions, acts, profile,
                     profiles.dead_neurons(profile), test.class_names)


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
    values = np.asarray(md.acts[site][:, index], np.float64)
    values = np.where(np.asarray(selected_rows(md, label)), values, -np.inf)
    order = np.argsort(-values, kind="stable")[:n]
    return order[np.isfinite(values[order])]
