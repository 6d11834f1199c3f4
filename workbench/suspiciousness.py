"""Suspiciousness of neurons from their hit spectra, and the choice of suspicious neurons.

Every measure is an elementwise function of a :class:`~workbench.spectra.Spectrum` whose
fields are arrays of any shape, or dicts of them (``{site: array}``): the result has the same
structure. Notation, after Naish et al. (TOSEM 2011) with DeepFault's fields:
``ef = a_f``, ``ep = a_s``, ``nf = n_f``, ``np = n_s``; ``F = ef + nf`` failing inputs,
``P = ep + np`` passing inputs.

A spectrum without failing inputs (a class the model classifies 100% right) has nothing to
localise: every measure warns (:class:`NothingToLocalise`), and :func:`top_k` warns when all
scores are equal, since its ranking is then only the tie-break order.

Zero denominators never give NaN. Unless a measure's docstring says otherwise, a ratio with a
zero denominator is 0: a neuron that no failing input activated is not suspicious. The values
are float32.

``MEASURES`` maps names to functions so a notebook or widget can pick a measure by name;
:func:`measure` looks one up and raises ``ValueError`` for an unknown name.

Selection: :func:`top_k` ranks all neurons of all sites together (DeepFault selects over all
hidden layers), :func:`top_k_per_site` ranks within each site, :func:`random_neurons` is the
paper's random baseline. Ties go to the neuron that comes first in layer order, then by index:
the released code (``np.argpartition``, and an earlier ``scores[i][j] in relevant_vals``
scan) breaks them arbitrarily.

References:
    Eniser, Gerasimou and Sen, "DeepFault: Fault Localization for Deep Neural Networks",
    FASE 2019, section 3.2, Table of suspiciousness measures (Tarantula, Ochiai, D*).
    Naish, Lee and Ramamohanarao, "A model for spectra-based software diagnosis", ACM TOSEM
    20(3), 2011, Table II (formulas of Jaccard, Kulczynski2, Op2, Russell-Rao, Zoltar, Wong...).
"""

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Shaped

from workbench import sites, validation
from workbench.spectra import Spectrum

__all__ = [
    "MEASURES",
    "NothingToLocalise",
    "ample",
    "barinel",
    "dstar",
    "jaccard",
    "kulczynski2",
    "measure",
    "ochiai",
    "op2",
    "random_neurons",
    "russell_rao",
    "sorensen_dice",
    "tarantula",
    "top_k",
    "top_k_per_site",
    "wong2",
    "zoltar",
]


class NothingToLocalise(UserWarning):
    """A spectrum without failing inputs, or scores that are all equal: no neuron is more
    suspicious than another, and a ranking of them means nothing."""


def _warn_without_failures(spectrum: Spectrum) -> None:
    """Warns when a spectrum (each class's, with a leading class axis) counts no failing input
    at any neuron."""
    a_f, n_f = jax.tree.leaves(spectrum.a_f), jax.tree.leaves(spectrum.n_f)
    if not a_f or any(validation.is_traced(v) for v in (a_f[0], n_f[0])):
        return
    failing = np.asarray(a_f[0]) + np.asarray(n_f[0])
    if failing.size == 0:
        return
    rows = failing.reshape(-1, failing.shape[-1] if failing.ndim else 1)
    empty = np.flatnonzero((rows == 0).all(axis=1))
    if len(empty) == 0:
        return
    which = ("the spectrum counts" if failing.ndim < 2
             else f"the spectra of classes {empty.tolist()} count")
    warnings.warn(f"{which} no failing input (every input passed: a class the model classifies "
                  f"100% right?): there is nothing to localise, and any ranking of these "
                  f"scores is arbitrary", NothingToLocalise, stacklevel=4)


def _apply(fn: Callable, spectrum: Spectrum):
    """Applies ``fn(ef, ep, nf, np)`` to float32 copies of the fields, leaf by leaf."""
    validation.instance(spectrum, Spectrum, "spectrum")
    structures = {jax.tree.structure(field) for field in spectrum}
    if len(structures) != 1:
        raise ValueError("the fields of a Spectrum must have the same structure")

    def leaf(a_s, a_f, n_s, n_f):
        values = [validation.array(v, "spectrum field").astype(jnp.float32)
                  for v in (a_f, a_s, n_f, n_s)]
        shapes = {v.shape for v in values}
        if len(shapes) != 1:
            raise ValueError(f"spectrum fields of different shapes: {sorted(shapes)}")
        if not any(validation.is_traced(v) for v in values) and any(
                bool((v < 0).any()) or not bool(jnp.isfinite(v).all()) for v in values):
            raise ValueError("spectrum counts must be finite and non-negative")
        return fn(*values)

    scores = jax.tree.map(leaf, *spectrum)
    _warn_without_failures(spectrum)
    return scores


def _div(num, den):
    """``num / den``, and 0 where ``den == 0``."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def tarantula(spectrum: Spectrum):
    """Tarantula: ``(ef/F) / (ef/F + ep/P)``.

    ``ef/F`` is 0 when there are no failing inputs, ``ep/P`` is 0 when there are no passing
    ones, and ``0/0`` is 0, as the released DeepFault code maps its NaN to 0.

    Example:
        >>> s = Spectrum(a_s=jnp.array([1, 0]), a_f=jnp.array([2, 0]), n_s=jnp.array([3, 4]),
        ...              n_f=jnp.array([0, 2]))
        >>> tarantula(s).tolist()  # (2/2) / (2/2 + 1/4) = 0.8; never activated: 0
        [0.800000011920929, 0.0]

    References:
        Jones and Harrold, "Empirical evaluation of the Tarantula automatic fault-localization
        technique", ASE 2005, section 2. DeepFault, FASE 2019, section 3.2.
    """
    def fn(ef, ep, nf, np_):
        fail = _div(ef, ef + nf)
        succeed = _div(ep, ep + np_)
        return _div(fail, fail + succeed)
    return _apply(fn, spectrum)


def ochiai(spectrum: Spectrum):
    """Ochiai: ``ef / sqrt(F * (ef + ep))``; 0 when the denominator is 0.

    The released DeepFault code's ``ochiai`` lost its ``return`` in one revision (it returns
    ``None`` and the ranking crashes); this one is tested against hand-computed values.

    Example:
        >>> s = Spectrum(a_s=jnp.array([2]), a_f=jnp.array([2]), n_s=jnp.array([0]),
        ...              n_f=jnp.array([2]))
        >>> ochiai(s).tolist()  # 2 / sqrt(4 * 4)
        [0.5]

    References:
        Ochiai, "Zoogeographic studies on the soleoid fishes found in Japan and its
        neighbouring regions", Bull. Jpn. Soc. Sci. Fish. 22, 1957. Abreu, Zoeteweij and van
        Gemund, "On the accuracy of spectrum-based fault localization", TAICPART 2007.
    """
    return _apply(lambda ef, ep, nf, np_: _div(ef, jnp.sqrt((ef + nf) * (ef + ep))), spectrum)


def dstar(spectrum: Spectrum, *, star: validation.Float = 3):
    """D*: ``ef**star / (ep + nf)``.

    A zero denominator with ``ef > 0`` (every failing input and no passing input activated the
    neuron) is the most suspicious case; it scores ``ef**star + 1``, more than any neuron of the
    same spectrum with a non-zero denominator can (at most ``F**star``), so it ranks first and
    stays finite. ``0/0`` is 0.

    Example:
        >>> s = Spectrum(a_s=jnp.array([1, 0]), a_f=jnp.array([2, 2]), n_s=jnp.array([3, 4]),
        ...              n_f=jnp.array([0, 0]))
        >>> dstar(s).tolist()  # 2**3 / 1 = 8; 2**3 / 0 -> 2**3 + 1
        [8.0, 9.0]

    References:
        Wong, Debroy, Gao and Li, "The DStar method for effective software fault
        localization", IEEE Trans. Reliability 63(1), 2014, section III. DeepFault, FASE 2019,
        section 3.2 (star = 3).
    """
    star = validation.scalar(star, "star", above=0.0)  # traced under jit: unchecked there

    def fn(ef, ep, nf, np_):
        numerator = ef ** star
        den = ep + nf
        return jnp.where(den > 0, numerator / jnp.where(den > 0, den, 1.0),
                         jnp.where(ef > 0, numerator + 1.0, 0.0))
    return _apply(fn, spectrum)


def jaccard(spectrum: Spectrum):
    """Jaccard: ``ef / (ef + nf + ep)``; 0 when the denominator is 0.

    References:
        Jaccard, "Étude comparative de la distribution florale...", Bull. Soc. Vaudoise Sci.
        Nat. 37, 1901. Abreu, Zoeteweij and van Gemund, TAICPART 2007.
    """
    return _apply(lambda ef, ep, nf, np_: _div(ef, ef + nf + ep), spectrum)


def sorensen_dice(spectrum: Spectrum):
    """Sørensen-Dice: ``2 ef / (2 ef + nf + ep)``; 0 when the denominator is 0.

    References:
        Dice, "Measures of the amount of ecologic association between species", Ecology 26,
        1945. Naish, Lee and Ramamohanarao, TOSEM 2011, Table II.
    """
    return _apply(lambda ef, ep, nf, np_: _div(2 * ef, 2 * ef + nf + ep), spectrum)


def kulczynski2(spectrum: Spectrum):
    """Kulczynski2: ``(ef/F + ef/(ef + ep)) / 2``, each ratio 0 on a zero denominator.

    References:
        Naish, Lee and Ramamohanarao, TOSEM 2011, Table II (after Lourenço et al., 2004).
    """
    return _apply(lambda ef, ep, nf, np_: 0.5 * (_div(ef, ef + nf) + _div(ef, ef + ep)),
                  spectrum)


def op2(spectrum: Spectrum):
    """Op2: ``ef - ep / (P + 1)``; never divides by zero.

    References:
        Naish, Lee and Ramamohanarao, TOSEM 2011, section 5 (the optimal measure for single
        faults, "Op2").
    """
    return _apply(lambda ef, ep, nf, np_: ef - ep / (ep + np_ + 1.0), spectrum)


def barinel(spectrum: Spectrum):
    """Barinel: ``1 - ep / (ep + ef)``; 0 when the neuron was never activated.

    References:
        Abreu, Zoeteweij and van Gemund, "Spectrum-based multiple fault localization", ASE
        2009, section 4 (the single-fault form of Barinel's posterior).
    """
    def fn(ef, ep, nf, np_):
        return jnp.where(ef + ep > 0, 1.0 - _div(ep, ep + ef), 0.0)
    return _apply(fn, spectrum)


def russell_rao(spectrum: Spectrum):
    """Russell-Rao: ``ef / (ef + nf + ep + np)``; 0 for an empty spectrum.

    References:
        Russell and Rao, "On habitat and association of species of anopheline larvae in
        south-eastern Madras", J. Malaria Inst. India 3, 1940. Naish et al., TOSEM 2011.
    """
    return _apply(lambda ef, ep, nf, np_: _div(ef, ef + nf + ep + np_), spectrum)


def zoltar(spectrum: Spectrum):
    """Zoltar: ``ef / (ef + nf + ep + 10000 nf ep / ef)``; 0 when ``ef == 0``.

    References:
        Gonzalez, "Automatic error detection techniques based on dynamic invariants", MSc
        thesis, Delft University of Technology, 2007. Naish et al., TOSEM 2011, Table II.
    """
    def fn(ef, ep, nf, np_):
        return _div(ef, ef + nf + ep + _div(10000.0 * nf * ep, ef))
    return _apply(fn, spectrum)


def wong2(spectrum: Spectrum):
    """Wong2: ``ef - ep``; never divides by zero.

    References:
        Wong, Qi, Zhao and Cai, "Effective fault localization using code coverage", COMPSAC
        2007, section 3 (heuristic II's simplest form). Naish et al., TOSEM 2011, Table II.
    """
    return _apply(lambda ef, ep, nf, np_: ef - ep, spectrum)


def ample(spectrum: Spectrum):
    """AMPLE: ``|ef/F - ep/P|``, each ratio 0 on a zero denominator.

    References:
        Dallmeier, Lindig and Zeller, "Lightweight defect localization for Java", ECOOP 2005;
        as a spectrum formula in Abreu, Zoeteweij and van Gemund, TAICPART 2007.
    """
    return _apply(lambda ef, ep, nf, np_: jnp.abs(_div(ef, ef + nf) - _div(ep, ep + np_)),
                  spectrum)


MEASURES: dict[str, Callable] = {
    "tarantula": tarantula,
    "ochiai": ochiai,
    "dstar": dstar,
    "jaccard": jaccard,
    "sorensen_dice": sorensen_dice,
    "kulczynski2": kulczynski2,
    "op2": op2,
    "barinel": barinel,
    "russell_rao": russell_rao,
    "zoltar": zoltar,
    "wong2": wong2,
    "ample": ample,
}


def measure(name: str) -> Callable:
    """The measure called ``name`` (a key of ``MEASURES``).

    Example:
        >>> measure("ochiai") is ochiai
        True
    """
    if name not in MEASURES:
        raise ValueError(f"unknown suspiciousness measure {name!r}; choose one of "
                         f"{', '.join(MEASURES)}")
    return MEASURES[name]


Scores = Mapping[str, Shaped[ArrayLike, "..."]] | Shaped[ArrayLike, "..."]


def _flat_scores(scores) -> tuple[dict[str, int] | None, np.ndarray]:
    """``({site: neurons}, all scores flat in site order)``; ``None`` for a single array."""
    if isinstance(scores, Mapping):
        arrays = {n: _host(v, f"scores[{n!r}]") for n, v in scores.items()}
        counts = {n: len(a) for n, a in arrays.items()}
        flat = np.concatenate(list(arrays.values())) if arrays else np.zeros(0)
    else:
        counts, flat = None, _host(scores, "scores")
    if np.isnan(flat).any():
        raise ValueError("scores contain NaN")
    return counts, flat


def _host(value, name: str) -> np.ndarray:
    if validation.is_traced(value):
        raise ValueError(f"{name}: neurons are selected from concrete scores; call this "
                         f"outside jax.jit")
    array = np.asarray(validation.array(value, name))
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must be numbers, got {array.dtype}")
    return array.astype(np.float64).reshape(-1)


def _warn_if_all_equal(flat: np.ndarray, k: int) -> None:
    if k > 0 and len(flat) > 1 and flat.min() == flat.max():
        warnings.warn(f"all {len(flat)} scores are equal ({flat[0]:g}): no neuron is more "
                      f"suspicious than another, and the {k} picked are only the first in "
                      f"layer order (a spectrum without failing inputs?)", NothingToLocalise,
                      stacklevel=3)


def _neurons_at(counts: dict[str, int] | None, flat_indices) -> list:
    """``(site, index)`` of each flat position (the positions themselves for one array)."""
    flat_indices = np.asarray(flat_indices, np.int64)
    if counts is None:
        return flat_indices.tolist()
    return [sites.site_index(counts, f) for f in flat_indices.tolist()]


def top_k(scores: Scores, k: validation.Int) -> list:
    """The ``k`` most suspicious neurons over all sites together, most suspicious first.

    Ties are broken deterministically: the neuron earlier in layer order (the order of the
    dict), then the lower index, comes first.

    Args:
        scores: ``{site: (neurons,)}`` (a measure of a spectrum) or one array.
        k: how many neurons; at most the number of neurons.

    Returns:
        A list of ``(site, index)`` pairs (plain flat indices for an array).

    Example:
        >>> top_k({"fc1": jnp.array([0.5, 0.9]), "fc2": jnp.array([0.9, 0.1])}, 2)
        [('fc1', 1), ('fc2', 0)]
    """
    counts, flat = _flat_scores(scores)
    if not validation.is_int(k) or not 0 <= k <= len(flat):
        raise ValueError(f"k={k!r} must be an int between 0 and the {len(flat)} neurons")
    k = int(k)
    _warn_if_all_equal(flat, k)
    return _neurons_at(counts, np.argsort(-flat, kind="stable")[:k])


def top_k_per_site(scores: Mapping[str, Shaped[ArrayLike, "..."]], k: validation.Int
                   ) -> dict[str, list[int]]:
    """The ``k`` most suspicious neurons of each site (all of a smaller site), ties to the
    lower index.

    Example:
        >>> top_k_per_site({"fc1": jnp.array([0.2, 0.9, 0.9]), "fc2": jnp.array([0.3])}, 2)
        {'fc1': [1, 2], 'fc2': [0]}
    """
    validation.instance(scores, Mapping, "scores")
    k = validation.integer(k, "k", minimum=0)
    out = {}
    for name, value in scores.items():
        _, flat = _flat_scores(value)
        _warn_if_all_equal(flat, k)
        out[name] = np.argsort(-flat, kind="stable")[:k].tolist()
    return out


def random_neurons(sizes: Mapping[str, int], k: validation.Int, *, key: Any,
                   exclude: Iterable[Any] = ()) -> list[tuple[str, int]]:
    """``k`` distinct neurons drawn uniformly from ``sizes`` under ``key``: DeepFault's random
    baseline.

    With ``exclude`` (the neurons the measures picked), this is the released code's variant
    (``run.py``, approach ``random``): random neurons other than any suspicious one. That code
    also draws only from the layers holding a suspicious neuron; pass ``sizes`` restricted to
    those sites for that.

    Args:
        sizes: ``{site: neurons}``, e.g. :func:`workbench.activations.neuron_counts`.
        k: how many neurons.
        key: a JAX random key.
        exclude: ``(site, index)`` pairs that may not be drawn.

    Returns:
        A list of ``k`` ``(site, index)`` pairs, in the order drawn.

    Example:
        >>> picked = random_neurons({"fc1": 2, "fc2": 2}, 3, key=jax.random.key(0),
        ...                         exclude=[("fc1", 0)])
        >>> sorted(picked)
        [('fc1', 1), ('fc2', 0), ('fc2', 1)]
    """
    sizes = validation.counts(sizes, "sizes")
    key = validation.key(key)
    k = validation.integer(k, "k", minimum=0)
    total = sum(sizes.values())
    allowed = np.ones(total, bool)
    for pair in exclude:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"exclude must hold (site, index) pairs, got {pair!r}")
        site, index = pair
        if site in sizes:  # neurons of other sites cannot be drawn anyway
            allowed[sites.flat_index(sizes, site, index)] = False
    if not 0 <= k <= int(allowed.sum()):
        raise ValueError(f"cannot draw {k} neurons from the {int(allowed.sum())} allowed ones")
    if k == 0:
        return []
    p = jnp.asarray(allowed, jnp.float32)
    flat = jax.random.choice(key, total, (k,), replace=False, p=p / p.sum())
    return _neurons_at(sizes, np.asarray(flat))
