"""workbench: test deep neural networks from the inside, in JAX.

Six layers (``ARCHITECTURE.md``), each module one concept:

- kernels, pure functions on ``{site: (batch, neurons)}``: ``coverage`` (NC and the DeepGauge
  family), ``patterns`` (TKNP), ``profiles`` (training ranges), ``spectra`` and
  ``suspiciousness`` (DeepFault's fault localisation), ``surprise`` (LSA, DSA), ``stats``
  (significance, effect sizes, intervals), ``sites`` (site and neuron bookkeeping),
  ``validation`` (argument checks);
- the model layer: ``models`` (the zoo, imported Keras models), ``keras`` (Keras 2 files read as
  data), ``activations`` (the one contract for reading neurons), ``train`` (Optax training, safe
  checkpoints), ``data`` (MNIST, CIFAR-10, the released models' files), ``files`` (atomic
  writes);
- passes, datasets through a model: ``streaming``, ``passes``;
- algorithms: ``synthesis`` (DeepFault), ``differential`` (DeepXplore), ``constraints`` (image
  transformations), ``adversarial`` (FGSM), ``retraining``, ``fuzzing`` (DeepHunter, TensorFuzz)
  with ``mutations`` (its image mutations);
- experiments and front ends, imported on demand: ``workbench.experiments``,
  ``workbench.plots``, ``workbench.widgets``, ``workbench.reproduce``, ``workbench.cli``.
"""

from workbench import (
    activations,
    adversarial,
    constraints,
    coverage,
    data,
    differential,
    files,
    fuzzing,
    keras,
    models,
    mutations,
    passes,
    patterns,
    profiles,
    retraining,
    sites,
    spectra,
    stats,
    streaming,
    surprise,
    suspiciousness,
    synthesis,
    train,
    validation,
)

__all__ = [
    "activations",
    "adversarial",
    "constraints",
    "coverage",
    "data",
    "differential",
    "files",
    "fuzzing",
    "keras",
    "models",
    "mutations",
    "passes",
    "patterns",
    "profiles",
    "retraining",
    "sites",
    "spectra",
    "stats",
    "streaming",
    "surprise",
    "suspiciousness",
    "synthesis",
    "train",
    "validation",
]
__version__ = "0.1.0"
