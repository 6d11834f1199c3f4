"""Hit spectra of neurons: how many passing and failing inputs activated each neuron.

DeepFault (Eniser, Gerasimou and Sen, FASE 2019, section 3.1) carries spectrum-based fault
localisation from programs to networks: a neuron plays the part of a program statement, an
input the part of a test, and the test passes when the network classifies the input
correctly. For every neuron it counts

- ``a_s``: passing inputs that activated it (``A_c`` in the paper's notation, ``num_cs`` in
  the released code),
- ``a_f``: failing inputs that activated it (``num_cf``),
- ``n_s``: passing inputs that did not activate it (``num_us``),
- ``n_f``: failing inputs that did not activate it (``num_uf``).

"Activated" means value ``> threshold``. DeepFault uses ``threshold=0`` on post-activation
values, which for ReLU and LeakyReLU layers is the same as the pre-activation value being
positive; a convolutional channel is one neuron, by the mean over its positions (the
``reduce`` option of :func:`workbench.activations.trace`). DeepFault's runs use one class at
a time: the spectrum of class ``c`` counts only inputs whose true label is ``c``
(``where=labels == c`` here, or ``label=c`` in :func:`model_spectrum`).

Notes on the released code (``hfeniser/DeepFault``, ``run.py``, ``utils.py``):

- It counts every weighted layer except the output layer (``get_trainable_layers``); its
  Keras models apply the nonlinearity as a separate layer, so it thresholds pre-activation
  values. Here any site of ``activations.trace`` is counted, post-activation by default.
- ``run.py`` builds the spectrum on a class's inputs of a 1/6 validation split of the training
  set; the paper describes the test set. Both are available: pass either split.
- One revision of ``utils.construct_spectrum_matrices`` returns ``num_cf`` in place of
  ``num_us``; the counts here are tested against a plain NumPy count.
- It loops over inputs and neurons in Python; here one jitted pass per batch counts all of
  them (``(acts > t)`` against ``passed`` with a sum over the batch axis).
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from workbench import activations, streaming

ArrayLike = Array | np.ndarray

__all__ = ["Spectrum", "hit_spectrum", "model_spectrum", "for_class", "total", "concatenate"]


class Spectrum(NamedTuple):
    """Per-neuron hit counts. Each field has the same structure: one array, or a dict
    ``{site: array}`` in layer order (what :func:`hit_spectrum` returns).

    Fields are int32 counts; with a leading class axis (``by_class=True``) each array is
    ``(classes, neurons)``.
    """

    a_s: Any  # activated, passed: site -> shape=(neurons,), dtype=int32
    a_f: Any  # activated, failed: site -> shape=(neurons,), dtype=int32
    n_s: Any  # not activated, passed: site -> shape=(neurons,), dtype=int32
    n_f: Any  # not activated, failed: site -> shape=(neurons,), dtype=int32


def _count(hit, passed, where):
    """The four counts of ``hit: bool[batch, neurons]``; ``passed``, ``where``: ``bool[batch]``."""
    passed = passed[:, None]
    where = where[:, None]
    ok = where & passed
    bad = where & ~passed
    return (jnp.sum(hit & ok, axis=0, dtype=jnp.int32), jnp.sum(hit & bad, axis=0, dtype=jnp.int32),
            jnp.sum(~hit & ok, axis=0, dtype=jnp.int32), jnp.sum(~hit & bad, axis=0, dtype=jnp.int32))


@jax.jit
def _hit_spectrum(values: tuple, passed, where, threshold):
    counts = [_count(v > threshold, passed, where) for v in values]
    return tuple(tuple(c[i] for c in counts) for i in range(4))


def _check_acts(acts: Mapping[str, jax.Array]) -> int:
    if not isinstance(acts, Mapping) or not acts:
        raise ValueError("acts must be a non-empty dict {site: Array(batch, neurons)}")
    sizes = set()
    for name, value in acts.items():
        if getattr(value, "ndim", None) != 2:
            raise ValueError(f"acts[{name!r}] must be (batch, neurons), got shape "
                             f"{getattr(value, 'shape', None)}")
        if not isinstance(value, jax.core.Tracer) and not bool(np.isfinite(np.asarray(value)).all()):
            raise ValueError(f"acts[{name!r}] contains NaN or infinity")
        sizes.add(value.shape[0])
    if len(sizes) != 1:
        raise ValueError(f"all sites must have the same batch size, got {sorted(sizes)}")
    return sizes.pop()


def _check_mask(name: str, value, batch: int) -> jax.Array:
    value = jnp.asarray(value)
    if value.dtype != jnp.bool_ or value.shape != (batch,):
        raise ValueError(f"{name} must be bool of shape ({batch},), got {value.dtype} "
                         f"of shape {value.shape}")
    return value


def hit_spectrum(acts: Mapping[str, ArrayLike], passed: ArrayLike, *, threshold: float = 0.0,
                 where: ArrayLike | None = None) -> Spectrum:
    """Counts, per neuron, the passing and failing inputs that did and did not activate it.

    Shapes and dtypes are checked here (``ValueError``), not by the annotations.

    Args:
        acts: ``{site: (batch, neurons)}`` floating point, e.g. from :func:`workbench.activations.activations`.
        passed: ``bool[batch]``, true where the model classified the input correctly.
        threshold: a neuron is activated by an input when its value is ``> threshold``.
        where: optional ``bool[batch]``: count only these inputs (one class, say).

    Returns:
        A :class:`Spectrum` of dicts ``{site: int32[neurons]}`` in the order of ``acts``.

    Example:
        >>> acts = {"fc1": jnp.array([[1.0, -1.0], [2.0, 0.0], [0.5, 3.0]])}
        >>> s = hit_spectrum(acts, jnp.array([True, False, True]))
        >>> [s.a_s["fc1"].tolist(), s.a_f["fc1"].tolist(), s.n_s["fc1"].tolist(),
        ...  s.n_f["fc1"].tolist()]
        [[2, 1], [1, 0], [0, 1], [0, 1]]

    References:
        Eniser et al., "DeepFault: Fault Localization for Deep Neural Networks", FASE 2019,
        section 3.1 (hit spectrum of a neuron).
    """
    batch = _check_acts(acts)
    passed = _check_mask("passed", passed, batch)
    where = jnp.ones(batch, bool) if where is None else _check_mask("where", where, batch)
    names = list(acts)
    counts = _hit_spectrum(tuple(acts[n] for n in names), passed, where, jnp.float32(threshold))
    return Spectrum(*(dict(zip(names, field)) for field in counts))


def _model_step(state, trace, mask, params, labels):
    """One batch of :func:`model_spectrum`: state is four tuples of per-site count arrays."""
    threshold, label = params["threshold"], params["label"]
    # A leading class axis in the state (a static shape) asks for one spectrum per class.
    n_classes = state[0][0].shape[0] if state[0][0].ndim == 2 else None
    passed = jnp.argmax(trace.logits, axis=-1) == labels
    values = tuple(trace.acts.values())
    if n_classes is None:
        where = mask & ((label < 0) | (labels == label))
        new = [_count(v > threshold, passed, where) for v in values]
    else:
        # One spectrum per true class in the same pass: (classes, batch) masks.
        where = mask[None, :] & (labels[None, :] == jnp.arange(n_classes)[:, None])
        new = [jax.vmap(_count, in_axes=(None, None, 0))(v > threshold, passed, where)
               for v in values]
    return tuple(tuple(old + c[i] for old, c in zip(state[i], new)) for i in range(4))


def model_spectrum(model, images, labels, *, threshold: float = 0.0, label: int | None = None,
                   by_class: bool = False, n_classes: int = 10, batch_size: int = 1000,
                   kind: str = "post", reduce: str = "mean", scale: str | None = None
                   ) -> Spectrum:
    """The hit spectrum of every neuron of ``model`` over a whole dataset, streamed.

    One jitted pass per fixed-size batch (:func:`workbench.streaming.fold_model`, sharded over
    all devices) computes the logits and neurons and adds the batch's counts; an input
    passes when ``argmax(logits) == labels``.

    Args:
        model: a zoo model or any NNX model that sows its activations.
        images: ``(n, ...)`` inputs in the model's range.
        labels: ``int[n]`` true classes.
        threshold: activation threshold (``> threshold``).
        label: count only inputs of this true class (DeepFault's per-class runs).
        by_class: one spectrum per true class in the same pass: arrays ``(n_classes, neurons)``.
        n_classes: classes for ``by_class``.
        batch_size: rows per jitted batch.
        kind, reduce, scale: which values are neurons (:func:`workbench.activations.trace`).

    Returns:
        A :class:`Spectrum` of dicts ``{site: int32[neurons]}`` (or ``[n_classes, neurons]``).

    Example:
        >>> from workbench import models
        >>> net = models.create("deepfault_3x50_relu")
        >>> x = jnp.linspace(0, 1, 4 * 784).reshape(4, 28, 28, 1)
        >>> s = model_spectrum(net, x, jnp.array([0, 1, 2, 3]), batch_size=2)
        >>> {k: v.shape for k, v in s.a_s.items()}
        {'fc1': (50,), 'fc2': (50,), 'fc3': (50,)}
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} "
                         f"of shape {labels.shape}")
    if label is not None and by_class:
        raise ValueError("give either label= or by_class=True, not both")
    counts = activations.neuron_counts(model, tuple(model.input_shape), kind=kind, reduce=reduce,
                                       scale=scale)
    names = list(counts)
    lead = (n_classes,) if by_class else ()
    state = tuple(tuple(jnp.zeros((*lead, counts[n]), jnp.int32) for n in names)
                  for _ in range(4))
    params = {"threshold": jnp.float32(threshold),
              "label": jnp.int32(-1 if label is None else label)}
    state = streaming.fold_model(model, images, _model_step, state, labels.astype(np.int32),
                                 params=params, batch_size=batch_size, kind=kind, reduce=reduce,
                                 scale=scale)
    return Spectrum(*(dict(zip(names, field)) for field in state))


def for_class(spectrum: Spectrum, c: int) -> Spectrum:
    """The class-``c`` spectrum out of a ``by_class=True`` spectrum."""
    return Spectrum(*(jax.tree.map(lambda a: a[c], field) for field in spectrum))


def total(spectrum: Spectrum) -> Any:
    """Inputs counted per neuron: ``a_s + a_f + n_s + n_f`` (the same for every neuron of one
    spectrum), with the structure of a field."""
    return jax.tree.map(lambda a, b, c, d: a + b + c + d, *spectrum)


def concatenate(spectrum: Spectrum) -> Spectrum:
    """Joins the sites of a dict spectrum along the neuron axis (layer order), for measures
    over all neurons at once."""
    return Spectrum(*(jnp.concatenate(list(field.values()), axis=-1) for field in spectrum))
