"""Passes: a whole dataset through a model, in fixed-size batches sharded over every device.

Each pass checks its inputs once at the boundary (:func:`workbench.activations.check_model_input`:
the input shape comes from the data, never from a model attribute, so any NNX model that sows
its layers works), reads the layer order from :func:`workbench.activations.neuron_counts`, and
folds the batches of :mod:`workbench.streaming` (fixed size, the last one zero-padded and
masked, so nothing recompiles) through one jitted step: the model's neurons under a
:class:`~workbench.activations.Convention` (:func:`workbench.activations.neurons`), then the
kernels of :mod:`workbench.coverage`, :mod:`workbench.profiles`, :mod:`workbench.patterns` and
:mod:`workbench.spectra` on them. Results come back in layer order.

- :func:`model_coverage`: every requested coverage criterion from one pass.
- :func:`model_profile`: the training profile (ranges and moments) of every neuron.
- :func:`model_patterns`: TKNP, the distinct top-k patterns.
- :func:`model_spectrum`: DeepFault's hit spectrum, per class if asked.
- :func:`model_trace`: the logits and neurons of every input, gathered in host memory
  (surprise adequacy's activation traces, predictions).
- :func:`deepxplore_coverage`: DeepXplore's neuron coverage, the one implementation: NC
  (:func:`workbench.coverage.neuron_coverage` with ``minmax_per_input=False``) on the
  ``"deepxplore"`` convention's values, which :mod:`workbench.activations` has already
  min-max scaled per input and layer; the generator of :mod:`workbench.differential` counts
  the same values with the same function.
- :func:`fold_model`: the fold they share, for a pass of your own.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Bool, Shaped

from workbench import activations, coverage, patterns, profiles, spectra, streaming, validation

__all__ = [
    "deepxplore_coverage",
    "fold_model",
    "model_coverage",
    "model_patterns",
    "model_profile",
    "model_spectrum",
    "model_trace",
]

Images = Shaped[ArrayLike, "_n ..."]
Spec = str | activations.Convention


def _setup(model, images, convention, batch_size) -> tuple[Any, Any, activations.Convention,
                                                            dict]:
    """The boundary check every pass runs once, after its own arguments' checks and before any
    work: batch size, convention, model parts, inputs (their shape against the model's, by
    tracing it), layer order."""
    validation.positive_int(batch_size, "batch_size")
    conv = activations.as_convention(convention)
    graphdef, weights = activations.split(model)
    shape = activations.check_model_input((graphdef, weights), images, "images")
    return graphdef, weights, conv, activations.neuron_counts((graphdef, weights), shape,
                                                              convention=conv)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _logits(graphdef, weights, x):
    # Through ``neurons`` (a capture), not ``forward``: a model that sows outside a capture
    # under the name of one of its layers runs only inside one.
    return activations.neurons(graphdef, weights, x).logits


def _n_classes(graphdef, weights, shape: tuple[int, ...]) -> int:
    """The model's outputs (classes), from the logits' shape (traced, nothing computed)."""
    out = jax.eval_shape(functools.partial(_logits, graphdef), weights,
                         jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    return int(out.shape[-1])


@functools.cache
def _through_model(step: Callable, graphdef, conv: activations.Convention) -> Callable:
    """``step`` behind the model's forward pass, one function per (step, structure,
    convention), so the fold compiles once for them."""

    def model_step(state, mask, params, images, *extra):
        weights, step_params = params
        trace = activations.neurons(graphdef, weights, images, conv)
        return step(state, trace, mask, step_params, *extra)

    return model_step


def _fold(parts, step, state, images, *extra, params=None, batch_size=1000):
    graphdef, weights, conv, _ = parts
    return streaming.fold(_through_model(step, graphdef, conv), state, images, *extra,
                          params=(weights, params), batch_size=batch_size)


def fold_model(model, images: Images, step: Callable, state: Any, *extra: Images,
               params: Any = None, convention: Spec = "post",
               batch_size: validation.Int = 1000) -> Any:
    """Folds ``step(state, trace, mask, params, *extra_batch) -> state`` over a dataset's
    forward passes: one jitted call per batch computes the model's
    :class:`~workbench.activations.Trace` and folds it in.

    Args:
        model: any Flax NNX model that sows its activations.
        images: inputs ``(n, ...)`` as the model takes them, floating point, finite.
        step: a pure, module-level function of the running state, the batch's ``Trace``
            (``acts`` in layer order), ``mask: bool[batch]`` (true on real rows), ``params``
            and the batch of each ``extra`` array.
        state: the initial state (any pytree of arrays).
        extra: more per-example arrays (labels, say), batched alongside ``images``.
        params: a pytree passed to every step as traced values.
        convention: which values are neurons: a name in ``activations.CONVENTIONS`` or an
            :class:`~workbench.activations.Convention`.
        batch_size: the most rows per batch (:func:`workbench.streaming.batch_rows`).

    Returns:
        The final state (a dict in it comes back with sorted keys: restore the layer order
        with :func:`workbench.activations.in_order`).

    Example:
        >>> from workbench import models
        >>> def count(state, trace, mask, params):
        ...     return state + jnp.sum(mask & (trace.acts["conv1"] > params).any(axis=1))
        >>> int(fold_model(models.create("lenet1", seed=0), np.ones((5, 28, 28, 1), np.float32),
        ...                count, jnp.int32(0), params=-1.0, batch_size=2))
        5
    """
    if not callable(step):
        raise ValueError(f"step must be a function (state, trace, mask, params, *extra), got "
                         f"{type(step).__name__}")
    parts = _setup(model, images, convention, batch_size)
    for i, array in enumerate(extra):
        if np.shape(array)[:1] != (len(images),):
            raise ValueError(f"extra[{i}] must have one row per image ({len(images)}), got "
                             f"shape {np.shape(array)}")
    return _fold(parts, step, state, images, *extra, params=params, batch_size=batch_size)


# ------------------------------------------------------------------------------ profile


def _profile_step(state, trace, mask, params):
    return profiles.profile_update(state, trace.acts, mask=mask)


def model_profile(model, images: Images, *, convention: Spec = "post",
                  batch_size: validation.Int = 1000) -> profiles.Profile:
    """Streams ``images`` (usually the training set) through ``model`` and profiles its neurons
    (:func:`workbench.profiles.profile_update` per batch).

    Args:
        model: an NNX model that sows its activations.
        images: ``(n, ...)`` inputs.
        convention: which values are neurons (a name in ``activations.CONVENTIONS``).
        batch_size: the most inputs per batch.

    Returns:
        The :class:`~workbench.profiles.Profile`, sites in layer order.

    Example:
        >>> from workbench import models
        >>> prof = model_profile(models.create("lenet1", seed=0),
        ...                      np.zeros((3, 28, 28, 1), np.float32))
        >>> {site: low.shape for site, low in prof.low.items()}
        {'conv1': (4,), 'conv2': (12,)}
    """
    parts = _setup(model, images, convention, batch_size)
    counts = parts[3]
    state = _fold(parts, _profile_step, profiles.profile_init(counts), images,
                  batch_size=batch_size)
    return profiles.Profile(*(activations.in_order(table, counts)
                              for table in profiles.profile_value(state)))


# ----------------------------------------------------------------------------- coverage


@functools.cache
def _coverage_step(criteria: tuple[str, ...], k_sections: int | None, k_top: int | None):
    """One step per set of static options, so the fold compiles once per set."""

    def step(state, trace, mask, params):
        return {c: coverage.update(state[c], trace.acts, criterion=c, mask=mask,
                                   threshold=params["threshold"], minmax_per_input=False,
                                   profile=params["profile"],
                                   k=k_sections if c == "kmnc" else k_top,
                                   std_multiple=params["std_multiple"])
                for c in criteria}

    return step


def model_coverage(model, images: Images, *, criteria: Sequence[str] = coverage.CRITERIA,
                   convention: Spec = "post", profile: profiles.Profile | None = None,
                   threshold: validation.Float = 0.0, k_sections: validation.Int = 10,
                   k_top: validation.Int = 2, std_multiple: validation.Float = 0.0,
                   batch_size: validation.Int = 1000
                   ) -> dict[str, dict[str, Bool[jax.Array, "_neurons ..."]]]:
    """Every requested criterion of ``images`` on ``model``, from one streamed pass.

    NC compares the convention's values with ``threshold`` as they are
    (``minmax_per_input=False``): raw values under ``"post"``, the min-max scaled values under
    ``"deepxplore"``, where a constant layer output scales to 0 and so covers nothing at any
    threshold >= 0, as in the released DeepXplore code (:func:`deepxplore_coverage`).

    Args:
        model: an NNX model that sows its activations.
        images: ``(n, ...)`` test inputs.
        criteria: names from ``coverage.CRITERIA``.
        convention: which values are neurons (a name in ``activations.CONVENTIONS``).
        profile: the training profile (:func:`model_profile`, same convention), needed by
            KMNC, NBC and SNAC.
        threshold: NC's threshold (traced: a new value does not recompile).
        k_sections: KMNC's ``k``.
        k_top: TKNC's ``k``.
        std_multiple: NBC's and SNAC's corners start this many standard deviations beyond the
            training range (traced).
        batch_size: the most inputs per batch.

    Returns:
        ``{criterion: {site: mask}}``, sites in layer order; pass each to
        :func:`workbench.coverage.ratio`.

    Example:
        >>> from workbench import models
        >>> net = models.create("lenet1", seed=0)
        >>> cov = model_coverage(net, np.ones((3, 28, 28, 1), np.float32), criteria=("nc",),
        ...                      convention="deepxplore", threshold=0.0)
        >>> {site: m.shape for site, m in cov["nc"].items()}["softmax"]
        (10,)
    """
    if isinstance(criteria, str) or not isinstance(criteria, (tuple, list)) or not criteria:
        raise ValueError(f"criteria must be a non-empty tuple of names from "
                         f"{coverage.CRITERIA}, got {criteria!r}")
    criteria = tuple(validation.choice(c, "criterion", coverage.CRITERIA) for c in criteria)
    params = {"threshold": validation.scalar(threshold, "threshold"),
              "std_multiple": validation.scalar(std_multiple, "std_multiple", minimum=0.0),
              "profile": None}
    k_sections = (validation.positive_int(k_sections, "k_sections") if "kmnc" in criteria
                  else None)
    k_top = validation.positive_int(k_top, "k_top") if "tknc" in criteria else None
    needs_profile = bool({"kmnc", "nbc", "snac"} & set(criteria))
    if needs_profile and profile is None:
        raise ValueError("KMNC, NBC and SNAC need a training profile (model_profile)")
    parts = _setup(model, images, convention, batch_size)
    counts = parts[3]
    if needs_profile:
        params["profile"] = profiles.check(profile, counts)
    state = {c: coverage.init(counts, criterion=c, k=k_sections) for c in criteria}
    state = _fold(parts, _coverage_step(criteria, k_sections, k_top), state, images,
                  params=params, batch_size=batch_size)
    return {c: activations.in_order(state[c], counts) for c in criteria}


def deepxplore_coverage(model, inputs: Images, *, threshold: validation.Float = 0.0,
                        batch_size: validation.Int = 1000
                        ) -> dict[str, Bool[np.ndarray, " _neurons"]]:
    """The neurons of ``model`` that ``inputs`` cover, by DeepXplore's convention.

    Each layer (conv, pooling, dense, logits, softmax) is min-max scaled per input, conv
    channels are averaged over positions (``activations.CONVENTIONS["deepxplore"]``), and a
    neuron is covered when some input takes it strictly above ``threshold``: NC of
    :func:`model_coverage` under ``convention="deepxplore"``. Used to compare DeepXplore's
    inputs with random and adversarial ones.

    Returns:
        ``{site: bool[neurons]}`` in layer order; :func:`workbench.coverage.ratio` gives NC.

    Example:
        >>> from workbench import models
        >>> cov = deepxplore_coverage(models.create("lenet1", seed=0),
        ...                           np.zeros((2, 28, 28, 1), np.float32))
        >>> sum(int(m.sum()) for m in cov.values())  # a black image: every layer is constant
        0

    References:
        DeepXplore, section 4.1 and Table 6 (coverage of the same number of inputs);
        released code ``utils.update_coverage``.
    """
    masks = model_coverage(model, inputs, criteria=("nc",), convention="deepxplore",
                           threshold=threshold, batch_size=batch_size)["nc"]
    return {site: np.asarray(m) for site, m in masks.items()}


# ----------------------------------------------------------------------------- patterns


@functools.cache
def _patterns_step(k: int, sites: tuple[tuple[str, int], ...]):
    def step(state, trace, mask, params):
        new = patterns.patterns_update(patterns.PatternState(*state, k, sites), trace.acts,
                                       mask=mask)
        return new.table, new.count, new.overflow

    return step


def model_patterns(model, images: Images, *, k: validation.Int = 2, convention: Spec = "post",
                   capacity: validation.Int = None, batch_size: validation.Int = 1000) -> int:
    """TKNP of ``images`` on ``model``: the number of distinct top-``k`` patterns, streamed.

    The distinct patterns are kept on the device as packed bits
    (:func:`workbench.patterns.patterns_update`), ``capacity`` of them (default: one per
    input), each ``ceil(neurons / 32)`` uint32 words.

    Example:
        >>> from workbench import models
        >>> model_patterns(models.create("lenet1", seed=0), np.zeros((3, 28, 28, 1), np.float32),
        ...                k=1, batch_size=2)
        1
    """
    k = validation.positive_int(k, "k")
    if capacity is not None:
        capacity = validation.positive_int(capacity, "capacity")
    parts = _setup(model, images, convention, batch_size)
    counts = parts[3]
    capacity = len(images) if capacity is None else capacity
    state = patterns.patterns_init(counts, k=k, capacity=capacity)
    table, count, overflow = _fold(parts, _patterns_step(state.k, state.sites),
                                   (state.table, state.count, state.overflow), images,
                                   batch_size=batch_size)
    return patterns.patterns_count(state._replace(table=table, count=count, overflow=overflow))


# ----------------------------------------------------------------------------- spectrum


def _spectrum_step(state, trace, mask, params, labels):
    """One batch of :func:`model_spectrum`; a class axis in the state asks for one spectrum
    per true class, all in this pass."""
    passed = jnp.argmax(trace.logits, axis=-1) == labels
    first = next(iter(state.a_s.values()))
    if first.ndim == 2:  # by class
        new = spectra.hit_spectrum_by_class(trace.acts, passed, labels, first.shape[0],
                                            threshold=params["threshold"], where=mask)
    else:
        label = params["label"]
        new = spectra.hit_spectrum(trace.acts, passed, threshold=params["threshold"],
                                   where=mask & ((label < 0) | (labels == label)))
    return jax.tree.map(jnp.add, state, new)


def model_spectrum(model, images: Images, labels: Shaped[ArrayLike, "..."], *,
                   threshold: validation.Float = 0.0, label: validation.Int = None,
                   by_class: bool = False, n_classes: validation.Int = None,
                   convention: Spec = "post",
                   batch_size: validation.Int = 1000) -> spectra.Spectrum:
    """The hit spectrum of every neuron of ``model`` over a whole dataset, streamed.

    Each batch adds its counts (:func:`workbench.spectra.hit_spectrum`); an input passes when
    ``argmax(logits) == labels``.

    Args:
        model: a zoo model or any NNX model that sows its activations.
        images: ``(n, ...)`` inputs in the model's range.
        labels: ``int[n]`` true classes, each one of the model's outputs (``0 <= label <
            classes``): an input is never dropped silently.
        threshold: activation threshold (``> threshold``).
        label: count only inputs of this true class (DeepFault's per-class runs), one of the
            model's classes.
        by_class: one spectrum per true class in the same pass: arrays ``(n_classes, neurons)``.
        n_classes: classes for ``by_class`` (default: the model's outputs); every label must
            be below it.
        convention: which values are neurons (a name in ``activations.CONVENTIONS``).
        batch_size: the most inputs per batch.

    Returns:
        A :class:`~workbench.spectra.Spectrum` of dicts ``{site: int32[neurons]}`` (or
        ``[n_classes, neurons]``), sites in layer order.

    Example:
        >>> from workbench import models
        >>> net = models.create("deepfault_3x50_relu")
        >>> x = jnp.linspace(0, 1, 4 * 784).reshape(4, 28, 28, 1)
        >>> s = model_spectrum(net, x, jnp.array([0, 1, 2, 3]), batch_size=2)
        >>> {k: v.shape for k, v in s.a_s.items()}
        {'fc1': (50,), 'fc2': (50,), 'fc3': (50,)}
    """
    validation.images(images, "images")
    params = {"threshold": validation.scalar(threshold, "threshold")}
    if label is not None and by_class:
        raise ValueError("give either label= or by_class=True, not both")
    if label is not None:
        validation.integer(label, "label", minimum=0)
    if n_classes is not None:
        validation.positive_int(n_classes, "n_classes")
    labels = validation.labels(labels, len(images))
    parts = _setup(model, images, convention, batch_size)
    counts = parts[3]
    classes = _n_classes(parts[0], parts[1], tuple(images.shape[1:]))
    _check_labels(labels, classes, label, n_classes if by_class else None)
    lead = ((classes if n_classes is None else n_classes),) if by_class else ()
    state = spectra.Spectrum(*({s: jnp.zeros((*lead, c), jnp.int32) for s, c in counts.items()}
                               for _ in range(4)))
    params["label"] = jnp.int32(-1 if label is None else label)
    state = _fold(parts, _spectrum_step, state, images, labels.astype(np.int32), params=params,
                  batch_size=batch_size)
    return spectra.Spectrum(*(activations.in_order(field, counts) for field in state))


def _check_labels(labels: np.ndarray, classes: int, label, n_classes) -> None:
    """Every label one of the model's ``classes`` (and below ``n_classes``), ``label`` too: an
    input outside them would be dropped from every count without a word."""
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        bad = int(np.argmax((labels < 0) | (labels >= classes)))
        raise ValueError(f"labels[{bad}] is {int(labels[bad])}, not one of the model's "
                         f"{classes} classes (0..{classes - 1})")
    if label is not None and label >= classes:
        raise ValueError(f"label={label} is not one of the model's {classes} classes "
                         f"(0..{classes - 1}): no input would be counted")
    if n_classes is not None:
        if n_classes > classes:
            raise ValueError(f"n_classes={n_classes} is more than the model's {classes} classes")
        if len(labels) and labels.max() >= n_classes:
            raise ValueError(f"labels go up to {int(labels.max())}, but n_classes={n_classes}: "
                             f"the inputs of classes {n_classes}..{int(labels.max())} would not "
                             f"be counted; pass n_classes={int(labels.max()) + 1} (or leave "
                             f"it out: the model's {classes})")


# ------------------------------------------------------------------------------- traces


@functools.partial(jax.jit, static_argnames=("graphdef", "conv", "sites"))
def _trace_batch(graphdef, weights, x, *, conv, sites):
    trace = activations.neurons(graphdef, weights, x, conv)
    return trace.logits, tuple(trace.acts[s] for s in sites)


def model_trace(model, images: Images, *, convention: Spec = "post",
                sites: Sequence[str] | None = None, batch_size: validation.Int = 1000
                ) -> activations.Trace:
    """The logits and neurons of every input, gathered in host memory.

    Batches have a fixed size (the last one zero-padded and cut back), so one compilation
    serves the whole dataset. For datasets whose neurons do not fit in memory, fold instead
    (:func:`fold_model`). Surprise adequacy's activation traces are ``.acts`` of the chosen
    sites (:func:`workbench.surprise.distance_surprise` takes the dict as it is).

    Args:
        model: any NNX model that sows its activations.
        images: ``(n, ...)`` inputs.
        convention: which values are neurons (a name in ``activations.CONVENTIONS``).
        sites: the sites to gather (default: all), returned in layer order.
        batch_size: the most inputs per batch.

    Returns:
        A :class:`~workbench.activations.Trace` of NumPy arrays: logits ``(n, classes)`` and
        ``{site: (n, neurons)}`` in layer order.

    Example:
        >>> from workbench import models
        >>> t = model_trace(models.create("lenet1"), np.zeros((5, 28, 28, 1), np.float32),
        ...                 sites=("conv2",), batch_size=2)
        >>> t.logits.shape, {site: a.shape for site, a in t.acts.items()}
        ((5, 10), {'conv2': (5, 12)})
    """
    if sites is not None and (isinstance(sites, str) or not isinstance(sites, (tuple, list))
                              or not sites):
        raise ValueError(f"sites must be a non-empty tuple of site names, got {sites!r}")
    graphdef, weights, conv, counts = _setup(model, images, convention, batch_size)
    if sites is None:
        sites = tuple(counts)
    unknown = [s for s in sites if s not in counts]
    if unknown:
        raise ValueError(f"unknown sites {unknown}; the model has {list(counts)}")
    sites = tuple(s for s in counts if s in sites)
    logits, parts = [], []
    for mask, batch in streaming.batches((images,), batch_size):
        real = int(np.asarray(mask).sum())
        out, acts = _trace_batch(graphdef, weights, batch, conv=conv, sites=sites)
        logits.append(np.asarray(out)[:real])
        parts.append([np.asarray(a)[:real] for a in acts])
    acts = {s: np.concatenate([p[i] for p in parts]) for i, s in enumerate(sites)}
    return activations.Trace(np.concatenate(logits), acts)
