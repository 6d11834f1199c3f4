"""The quickstart tour's measurements: coverage ratios, inputs synthesised for suspicious and
random neurons, and the tour's results table.

The tour (``notebooks/quickstart.ipynb``) measures one model's test-set coverage (DeepXplore's
NC and DeepGauge's criteria, Ma et al. ASE 2018), ranks its neurons by DeepFault's
suspiciousness (Eniser et al. FASE 2019), synthesises inputs for the most suspicious and for
random neurons, and finds difference-inducing inputs for the LeNet trio (Pei et al. SOSP 2017).
"""

from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import ArrayLike, Shaped

from workbench import coverage, differential, synthesis

__all__ = ["coverage_ratios", "results", "synthesis_accuracy", "synthesise"]


def coverage_ratios(masks: Mapping[str, Mapping], dead: Mapping[str, np.ndarray]
                    ) -> dict[str, float]:
    """The covered fraction of every criterion of ``masks`` (``{criterion: {site: mask}}``, as
    :func:`workbench.passes.model_coverage` returns), plus NC over the live neurons only
    (``"nc (live neurons)"``, leaving out ``dead``).

    Example:
        >>> masks = {"nc": {"fc1": np.array([True, False, False, True])}}
        >>> coverage_ratios(masks, {"fc1": np.array([False, False, True, False])})
        {'nc': 0.5, 'nc (live neurons)': 0.6666666666666666}
    """
    ratios = {name: coverage.ratio(m) for name, m in masks.items()}
    if "nc" in masks:
        ratios["nc (live neurons)"] = coverage.ratio(masks["nc"], exclude=dead)
    return ratios


def synthesise(model, seeds: Shaped[ArrayLike, "n ..."], targets: Mapping[str, Sequence], *,
               step_size: float, d: float) -> dict[str, synthesis.Synthesis]:
    """One :func:`workbench.synthesis.synthesize` run from ``seeds`` per named set of target
    neurons (``{"suspicious": [...], "random": [...]}``)."""
    return {name: synthesis.synthesize(model, seeds, chosen, step_size=step_size, d=d)
            for name, chosen in targets.items()}


def synthesis_accuracy(result: synthesis.Synthesis, label: int) -> float:
    """The fraction of synthesised inputs still classified as ``label``."""
    return float(np.mean(np.asarray(result.predictions) == label))


def results(*, test_accuracy: float, ratios: Mapping[str, float],
            made: Mapping[str, synthesis.Synthesis], label: int,
            found: differential.Result, n_seeds: int, trio: Sequence[str]) -> list[dict]:
    """The tour's results table: ``{"quantity", "value"}`` rows for the test accuracy, each
    coverage ratio, the accuracy on each set of synthesised inputs, difference-inducing inputs
    per seed and each of the ``trio``'s NC after DeepXplore."""
    rows = [{"quantity": "test accuracy", "value": float(test_accuracy)}]
    rows += [{"quantity": f"coverage: {name}", "value": value} for name, value in ratios.items()]
    rows += [{"quantity": f"accuracy on inputs synthesised for {name} neurons",
              "value": synthesis_accuracy(r, label)} for name, r in made.items()]
    rows.append({"quantity": "difference-inducing inputs per seed",
                 "value": len(found.inputs) / n_seeds})
    rows += [{"quantity": f"NC of {name} after DeepXplore", "value": float(nc)}
             for name, nc in zip(trio, found.coverage_after)]
    return rows
