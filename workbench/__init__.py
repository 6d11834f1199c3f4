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

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and editors; at run time each module loads on first use
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


def __getattr__(name: str):
    """Imports a module on first use (PEP 562), so ``workbench --help`` starts without JAX.

    Example:
        >>> import workbench
        >>> workbench.coverage.__name__
        'workbench.coverage'
    """
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
