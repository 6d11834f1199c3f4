"""Test-input prioritisation compared by APFD, the way the USI replication studies report it.

For one model and a set of test inputs (the clean test set, or half of it replaced by its FGSM
versions), every prioritiser orders the inputs and APFD scores the order against the
misclassified ones (:func:`workbench.prioritisation.apfd`). Repeating over seeds (each seed a
fresh random sample of the test images, a fresh FGSM half and a fresh random baseline) gives
each prioritiser's mean APFD with a 95% interval (:func:`workbench.stats.mean_interval`).

Prioritisers (:data:`PRIORITISERS`):

- softmax: ``deepgini``, ``entropy``, ``margin``, ``max_probability``;
- surprise of the last sown site's trace against the training traces: ``lsa``, ``dsa``,
  ``mdsa``, ``mlsa`` (multimodal LSA, 2 modes per class), and CAM over DSA's surprise
  coverage (``cam:dsc``, ``sc_k`` buckets of ``[0, max]``);
- coverage, total and additional, for each criterion: ``ctm:<criterion>``,
  ``cam:<criterion>`` (NC at ``threshold`` unscaled, KMNC with ``k_sections``, NBC, SNAC,
  TKNC with ``k_top``), on what each input covers alone (:func:`workbench.coverage.input_masks`);
- ``random``: a random order (expected APFD 0.5).

Ties: APFD takes the mean over every way of breaking ties in the scores (coverage totals tie
often); CAM's order is strict.

References:
    Weiss and Tonella, "Simple Techniques Work Surprisingly Well for Neural Network Test
    Prioritization and Active Learning", ISSTA 2022, sections 3-4 (prioritisers, APFD).
    Feng et al., "DeepGini", ISSTA 2020, section 4.
    Kim, Feldt and Yoo, ICSE 2019, section 4 (surprise-based prioritisation).
"""

import warnings
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jaxtyping import ArrayLike, Shaped

from workbench import (
    activations,
    adversarial,
    coverage,
    passes,
    prioritisation,
    profiles,
    stats,
    surprise,
    train,
)

__all__ = ["PRIORITISERS", "apfd_rows", "curves", "orders", "run", "summary"]

SOFTMAX = ("deepgini", "entropy", "margin", "max_probability")
SURPRISE = ("lsa", "dsa", "mdsa", "mlsa", "cam:dsc")
PRIORITISERS = (SOFTMAX + SURPRISE + tuple(f"{way}:{c}" for c in coverage.CRITERIA
                                           for way in ("ctm", "cam")) + ("random",))


def orders(model, images: Shaped[ArrayLike, "n ..."], *,
           train_images: Shaped[ArrayLike, "m ..."],
           train_labels: Shaped[ArrayLike, " m"], profile: profiles.Profile, key,
           threshold: float = 0.0, k_sections: int = 10, k_top: int = 1, sc_k: int = 100
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every prioritiser's order of ``images``, with the scores it sorted (for APFD's ties).

    Args:
        model: the model under test.
        images: the inputs to order.
        train_images, train_labels: the training inputs the surprise measures compare with.
        profile: the training profile (KMNC, NBC, SNAC).
        key: a JAX random key (multimodal LSA's k-means, the random order).
        threshold, k_sections, k_top: NC's threshold, KMNC's sections, TKNC's k.
        sc_k: surprise-coverage buckets.

    Returns:
        ``({name: int[n] order}, {name: float[n] scores})``; CAM has no scores.
    """
    images = np.asarray(images, np.float32)
    counts = activations.neuron_counts(model, images.shape[1:])
    site = list(counts)[-1]
    trace = passes.model_trace(model, images)
    probs = jax.nn.softmax(trace.logits)
    scores = {"deepgini": prioritisation.deepgini(probs),
              "entropy": prioritisation.softmax_entropy(probs),
              "margin": prioritisation.margin(probs),
              "max_probability": prioritisation.max_probability(probs)}
    predicted = np.asarray(trace.logits).argmax(axis=1).astype(np.int32)
    train_trace = passes.model_trace(model, train_images, sites=(site,)).acts[site]
    args = (train_trace, np.asarray(train_labels, np.int32), trace.acts[site], predicted)
    mlsa_key, random_key = jax.random.split(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # LSA's dropped columns, jitter
        scores["lsa"] = surprise.likelihood_surprise(*args)
        scores["mlsa"] = surprise.multimodal_likelihood_surprise(*args, modes=2, key=mlsa_key)
    scores["dsa"] = surprise.distance_surprise(*args)
    scores["mdsa"] = surprise.mahalanobis_surprise(*args, shrinkage=0.01)
    dsa = np.asarray(scores["dsa"])
    upper = float(np.max(dsa[np.isfinite(dsa)]))
    scores = {name: np.asarray(s, np.float64) for name, s in scores.items()}
    out = {name: np.asarray(prioritisation.order(s)) for name, s in scores.items()}
    out["cam:dsc"] = np.asarray(prioritisation.coverage_additional(
        {"dsc": surprise.surprise_buckets(dsa, upper=max(upper, 1e-6), k=sc_k)}))
    options = {"nc": {"threshold": threshold, "minmax_per_input": False},
               "kmnc": {"profile": profile, "k": k_sections}, "nbc": {"profile": profile},
               "snac": {"profile": profile}, "tknc": {"k": k_top}}
    for criterion, kwargs in options.items():
        masks = coverage.input_masks(trace.acts, criterion=criterion, **kwargs)
        scores[f"ctm:{criterion}"] = np.asarray(prioritisation.coverage_total(masks), np.float64)
        out[f"ctm:{criterion}"] = np.asarray(prioritisation.order(scores[f"ctm:{criterion}"]))
        out[f"cam:{criterion}"] = np.asarray(prioritisation.coverage_additional(masks))
    out["random"] = np.asarray(jax.random.permutation(random_key, len(images)))
    return {name: out[name] for name in PRIORITISERS}, scores


def apfd_rows(ordered: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
              faults: Shaped[ArrayLike, " n"], **labels) -> list[dict]:
    """One row per prioritiser: ``labels`` (say dataset, set, seed), ``prioritiser``,
    ``apfd`` (ties in its scores averaged), ``faults`` and ``inputs``.

    Example:
        >>> apfd_rows({"a": np.array([1, 0])}, {}, np.array([False, True]), seed=0)
        [{'seed': 0, 'prioritiser': 'a', 'apfd': 0.75, 'faults': 1, 'inputs': 2}]
    """
    faults = np.asarray(faults, bool)
    return [{**labels, "prioritiser": name,
             "apfd": prioritisation.apfd(order, faults, scores=scores.get(name)),
             "faults": int(faults.sum()), "inputs": len(faults)}
            for name, order in ordered.items()]


def run(model, test_images: Shaped[ArrayLike, "n ..."], test_labels: Shaped[ArrayLike, " n"],
        *, train_images: Shaped[ArrayLike, "m ..."], train_labels: Shaped[ArrayLike, " m"],
        n_test: int, seeds: Sequence[int], epsilon: float = 0.1, dataset: str = "mnist",
        **options) -> list[dict]:
    """APFD of every prioritiser, per seed, on a clean and an FGSM-mixed set.

    Each seed draws ``n_test`` of the test images; the ``"clean"`` set is them as they are,
    the ``"fgsm"`` set has its second half replaced by FGSM inputs (``epsilon``, from the true
    labels; :func:`workbench.adversarial.fgsm`). A set with no misclassified input is left
    out (APFD is undefined there).

    Args:
        model: the model under test.
        test_images, test_labels: the pool the sets are drawn from.
        train_images, train_labels: the training data (profile and surprise).
        n_test: inputs per set.
        seeds: one repetition each.
        epsilon: FGSM's step.
        dataset: a label for the rows.
        **options: passed to :func:`orders` (``threshold``, ``k_sections``, ``k_top``,
            ``sc_k``).

    Returns:
        Rows of :func:`apfd_rows` with ``dataset``, ``set`` and ``seed``.
    """
    test_images = np.asarray(test_images, np.float32)
    test_labels = np.asarray(test_labels)
    profile = passes.model_profile(model, train_images)
    rows = []
    for seed in seeds:  # one repetition per seed
        draw_key, order_key = jax.random.split(jax.random.key(seed))
        pick = np.asarray(jax.random.choice(draw_key, len(test_images), (n_test,),
                                            replace=False))
        images, labels = test_images[pick], test_labels[pick]
        half = n_test // 2
        mixed = np.concatenate([images[:half], adversarial.fgsm(
            model, images[half:], labels[half:], epsilon=epsilon)])
        for name, x in (("clean", images), ("fgsm", mixed)):
            ordered, scores = orders(model, x, train_images=train_images,
                                     train_labels=train_labels, profile=profile,
                                     key=order_key, **options)
            wrong = np.asarray(train.predict(model, x)) != labels
            if wrong.any():
                rows += apfd_rows(ordered, scores, wrong, dataset=dataset, set=name, seed=seed)
    return rows


def summary(rows: Sequence[Mapping]) -> list[dict]:
    """Mean APFD and its 95% interval over seeds, per dataset, set and prioritiser, best
    first within each set.

    Example:
        >>> rows = [{"dataset": "d", "set": "s", "seed": i, "prioritiser": "a", "apfd": v}
        ...         for i, v in enumerate([0.7, 0.8])]
        >>> [(r["prioritiser"], round(r["apfd"], 2), r["seeds"]) for r in summary(rows)]
        [('a', 0.75, 2)]
    """
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["set"], row["prioritiser"]), []).append(
            row["apfd"])
    out = []
    for (dataset, name, prioritiser), values in groups.items():
        mean, half = stats.mean_interval(values)
        out.append({"dataset": dataset, "set": name, "prioritiser": prioritiser, "apfd": mean,
                    "apfd 95% half-width": half, "seeds": len(values)})
    return sorted(out, key=lambda r: (r["dataset"], r["set"], -r["apfd"]))


def curves(model, images: Shaped[ArrayLike, "n ..."], labels: Shaped[ArrayLike, " n"], *,
           train_images: Shaped[ArrayLike, "m ..."], train_labels: Shaped[ArrayLike, " m"],
           names: Sequence[str], seed: int = 0, **options) -> dict[str, np.ndarray]:
    """The faults-found curve (:func:`workbench.prioritisation.faults_found`) of each of
    ``names`` on ``images``, faults the misclassified ones."""
    images = np.asarray(images, np.float32)
    ordered, _ = orders(model, images, train_images=train_images, train_labels=train_labels,
                        profile=passes.model_profile(model, train_images),
                        key=jax.random.key(seed), **options)
    wrong = np.asarray(train.predict(model, images)) != np.asarray(labels)
    return {name: np.asarray(prioritisation.faults_found(ordered[name], wrong))
            for name in names}
