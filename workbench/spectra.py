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
``"post"`` convention of :mod:`workbench.activations`). DeepFault's runs use one class at a
time: the spectrum of class ``c`` counts only inputs whose true label is ``c``
(``where=labels == c`` here, or ``label=c`` in :func:`workbench.passes.model_spectrum`, which
streams a whole dataset through a model).

Notes on the released code (``hfeniser/DeepFault``, ``run.py``, ``utils.py``):

- It counts every weighted layer except the output layer (``get_trainable_layers``); its
  Keras models apply the nonlinearity as a separate layer, so it thresholds pre-activation
  values. Here any site of ``activations.trace`` is counted, post-activation by default.
- ``run.py`` builds the spectrum on a class's inputs of a 1/6 validation split of the training
  set; the paper describes the test set. Both are available: pass either split.
- One revision of ``utils.construct_spectrum_matrices`` returns ``num_cf`` in place of
  ``num_us``; the counts here are tested against a plain NumPy count.
- It loops over inputs and neurons in Python; here one jitted call per batch counts all of
  them (``(acts > t)`` against ``passed`` with a sum over the batch axis).
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from workbench import validation

__all__ = ["Spectrum", "concatenate", "for_class", "hit_spectrum", "hit_spectrum_by_class",
           "total"]

Acts = validation.Acts  # {site: (batch, neurons)}


class Spectrum(NamedTuple):
    """Per-neuron hit counts. Each field has the same structure: one array, or a dict
    ``{site: array}`` in layer order (what :func:`hit_spectrum` returns).

    Fields are int32 counts; with a leading class axis (``by_class=True`` in
    :func:`workbench.passes.model_spectrum`) each array is ``(classes, neurons)``.
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
    return tuple(jnp.sum(h & rows, axis=0, dtype=jnp.int32)
                 for h, rows in ((hit, ok), (hit, bad), (~hit, ok), (~hit, bad)))


@jax.jit
def _hit_spectrum(values: tuple, passed, where, threshold):
    """Tuples in, tuples out (a dict leaving ``jax.jit`` would come back key-sorted)."""
    counts = [_count(v > threshold, passed, where) for v in values]
    return tuple(tuple(c[i] for c in counts) for i in range(4))


def hit_spectrum(acts: Acts, passed: validation.RowMask, *, threshold: validation.Float = 0.0,
                 where: validation.RowMask = None) -> Spectrum:
    """Counts, per neuron, the passing and failing inputs that did and did not activate it.

    Pure: it can also run inside your own ``jax.jit`` or ``jax.vmap`` (the streamed pass
    :func:`workbench.passes.model_spectrum` does).

    Args:
        acts: ``{site: (batch, neurons)}`` floating point, e.g. from
            :func:`workbench.activations.activations`.
        passed: ``bool[batch]``, true where the model classified the input correctly.
        threshold: a neuron is activated by an input when its value is ``> threshold``
            (traced: a new threshold does not recompile).
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
    acts = validation.acts(acts)
    batch = next(iter(acts.values())).shape[0]
    if passed is None:
        raise ValueError(f"passed must be bool[{batch}], got None")
    passed = validation.row_mask(passed, batch, "passed")
    where = validation.row_mask(where, batch, "where")
    counts = _hit_spectrum(tuple(acts.values()), passed, where,
                           validation.scalar(threshold, "threshold"))
    return Spectrum(*(dict(zip(acts, field)) for field in counts))


def _count_by_class(hit, ok, bad):
    """The four counts per class: ``ok``, ``bad`` are ``float[batch, classes]`` one-hot rows of
    the passing and failing inputs counted; one product with the hit matrix each (exact: every
    term is 0 or 1 and a batch's counts stay far below float32's 2**24)."""
    h = hit.astype(jnp.float32)
    a_s, a_f = (jnp.einsum("bc,bn->cn", rows, h, precision=jax.lax.Precision.HIGHEST)
                for rows in (ok, bad))
    n_s, n_f = ok.sum(0)[:, None] - a_s, bad.sum(0)[:, None] - a_f
    return tuple(x.astype(jnp.int32) for x in (a_s, a_f, n_s, n_f))


@functools.partial(jax.jit, static_argnames=("n_classes",))
def _hit_spectrum_by_class(values: tuple, passed, where, labels, threshold, *, n_classes):
    rows = jax.nn.one_hot(labels, n_classes, dtype=jnp.float32) * where[:, None]
    ok, bad = rows * passed[:, None], rows * ~passed[:, None]
    counts = [_count_by_class(v > threshold, ok, bad) for v in values]
    return tuple(tuple(c[i] for c in counts) for i in range(4))


def hit_spectrum_by_class(acts: Acts, passed: validation.RowMask, labels, n_classes: int, *,
                          threshold: validation.Float = 0.0,
                          where: validation.RowMask = None) -> Spectrum:
    """The hit spectrum of every class at once: field arrays ``int32[n_classes, neurons]``,
    row ``c`` equal to :func:`hit_spectrum` with ``where & (labels == c)``.

    DeepFault (section 3.1) analyses one class at a time; this counts all of them in one pass
    over a batch, as one product of the one-hot labels with the hit matrix per count (a
    label outside ``[0, n_classes)`` is counted in no class). Pure, like :func:`hit_spectrum`.

    Example:
        >>> acts = {"fc1": jnp.array([[1.0, -1.0], [2.0, 0.0], [0.5, 3.0]])}
        >>> s = hit_spectrum_by_class(acts, jnp.array([True, False, True]), jnp.array([0, 1, 0]), 2)
        >>> s.a_s["fc1"].tolist(), s.a_f["fc1"].tolist()
        ([[2, 1], [0, 0]], [[0, 0], [1, 0]])
    """
    acts = validation.acts(acts)
    batch = next(iter(acts.values())).shape[0]
    passed = validation.row_mask(passed, batch, "passed")
    where = validation.row_mask(where, batch, "where")
    labels = validation.labels(labels, batch)
    counts = _hit_spectrum_by_class(tuple(acts.values()), passed, where, labels,
                                    validation.scalar(threshold, "threshold"),
                                    n_classes=validation.positive_int(n_classes, "n_classes"))
    return Spectrum(*(dict(zip(acts, field)) for field in counts))


def for_class(spectrum: Spectrum, c: validation.Int) -> Spectrum:
    """The class-``c`` spectrum out of a ``by_class=True`` spectrum (arrays
    ``(classes, neurons)`` become ``(neurons,)``).

    Example:
        >>> s = Spectrum(*({"fc": jnp.zeros((3, 2), jnp.int32)} for _ in range(4)))
        >>> for_class(s, 3)
        Traceback (most recent call last):
        ...
        ValueError: c must be an int in [0, 2], got 3
    """
    validation.instance(spectrum, Spectrum, "spectrum")
    leaves = jax.tree.leaves(spectrum.a_s)
    if not leaves or any(jnp.ndim(a) != 2 for a in leaves):
        raise ValueError("for_class needs a by_class spectrum (arrays (classes, neurons)), got "
                         f"shapes {[jnp.shape(a) for a in leaves]}")
    c = validation.integer(c, "c", minimum=0, maximum=jnp.shape(leaves[0])[0] - 1)
    return Spectrum(*(jax.tree.map(lambda a: a[c], field) for field in spectrum))


def total(spectrum: Spectrum) -> Any:
    """Inputs counted per neuron: ``a_s + a_f + n_s + n_f`` (the same for every neuron of one
    spectrum), with the structure of a field."""
    return jax.tree.map(lambda a, b, c, d: a + b + c + d, *spectrum)


def concatenate(spectrum: Spectrum) -> Spectrum:
    """Joins the sites of a dict spectrum along the neuron axis (layer order), for measures
    over all neurons at once."""
    return Spectrum(*(jnp.concatenate(list(field.values()), axis=-1) for field in spectrum))
