"""The papers' experiments as plain functions: each takes models and data and returns rows
(a list of dicts) that :func:`workbench.experiments.common.save_table` writes and the notebooks
show.

``common`` (the project's folders, loading the papers' models, result tables), ``deepfault``
(suspicious against random neurons), ``deepfault_paper`` (DeepFault's tables at the paper's
scale, with ``deepfault_published``, the published values, and ``deepfault_verdicts``, a verdict
per claim), ``deepxplore`` (difference-inducing inputs, coverage
against baselines, hyperparameters, retraining), ``explorer`` (the neuron explorer's data),
``deepxplore_models``, ``deepxplore_tables`` and ``deepxplore_published`` (the paper-scale
tables, their models and the published values), ``fuzzing`` (coverage-guided against random
fuzzing), ``prioritisation`` (APFD of test-input prioritisers) and ``quickstart`` (the tour's
measurements). They sit above the algorithms (``synthesis``,
``differential``, ...) and below the front ends (``widgets``, ``plots``, ``reproduce``).
"""

from workbench.experiments import (
    common,
    deepfault,
    deepfault_paper,
    deepfault_published,
    deepfault_verdicts,
    deepxplore,
    deepxplore_models,
    deepxplore_published,
    deepxplore_tables,
    explorer,
    fuzzing,
    prioritisation,
    quickstart,
)

__all__ = [
    "common",
    "deepfault",
    "deepfault_paper",
    "deepfault_published",
    "deepfault_verdicts",
    "deepxplore",
    "deepxplore_models",
    "deepxplore_published",
    "deepxplore_tables",
    "explorer",
    "fuzzing",
    "prioritisation",
    "quickstart",
]
