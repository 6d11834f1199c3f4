"""workbench: test deep neural networks from the inside, in JAX.

One module per concept: ``data`` (MNIST, CIFAR-10), ``models`` (the zoo), ``activations``
(the neurons of any NNX model), ``train`` (Optax training, safe checkpoints), ``streaming``
(whole datasets through a jitted fold), ``coverage`` (NC and the DeepGauge family),
``patterns`` (TKNP), ``profiles`` (training ranges), ``passes`` (datasets through a model:
coverage, profiles, patterns, spectra, traces), ``surprise`` (LSA, DSA), ``spectra`` and
``suspiciousness`` (DeepFault's fault localisation),
``synthesis`` (DeepFault's input synthesis), ``differential`` (DeepXplore), ``constraints``
(DeepXplore's image transformations), ``adversarial``
(FGSM), ``retraining`` (retraining with generated inputs), ``stats`` (significance and effect
sizes).
Figures, widgets and the reproduction pipeline are imported on demand: ``workbench.plots``,
``workbench.widgets``, ``workbench.reproduce``.
"""

from workbench import activations
from workbench import adversarial
from workbench import constraints
from workbench import coverage
from workbench import data
from workbench import differential
from workbench import models
from workbench import passes
from workbench import patterns
from workbench import profiles
from workbench import retraining
from workbench import spectra
from workbench import stats
from workbench import streaming
from workbench import surprise
from workbench import suspiciousness
from workbench import synthesis
from workbench import train

__all__ = [
    "activations",
    "adversarial",
    "constraints",
    "coverage",
    "data",
    "differential",
    "models",
    "passes",
    "patterns",
    "profiles",
    "retraining",
    "spectra",
    "stats",
    "streaming",
    "surprise",
    "suspiciousness",
    "synthesis",
    "train",
]
__version__ = "0.1.0"
