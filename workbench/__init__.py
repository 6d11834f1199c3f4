"""workbench: test deep neural networks from the inside, in JAX.

Six layers (``ARCHITECTURE.md``), each module one concept:

- kernels, pure functions on ``{site: (batch, neurons)}``: ``coverage`` (NC and the DeepGauge
  family), ``patterns`` (TKNP), ``profiles`` (training ranges), ``spectra`` and
  ``suspiciousness`` (DeepFault's fault localisation), ``surprise`` (LSA, DSA, MDSA, multimodal
  LSA), ``nlc`` (NeuraL Coverage), ``cluster_coverage`` (TensorFuzz's), ``idc``
  (importance-driven coverage), ``sign_coverage`` (sign-sign coverage), ``clustering``
  (k-means, silhouette), ``prioritisation`` (test-input prioritisation, APFD), ``stats``
  (significance, effect sizes, intervals), ``sites`` (site and neuron bookkeeping),
  ``validation`` (argument checks);
- the model layer: ``models`` (the zoo, imported Keras models), ``keras`` (Keras 2 files read as
  data), ``activations`` (the one contract for reading neurons), ``train`` (Optax training, safe
  checkpoints), ``data`` (MNIST, CIFAR-10, the released models' files), ``sources`` (their URLs
  and SHA-256 digests), ``files`` (atomic writes);
- passes, datasets through a model: ``streaming``, ``passes``;
- algorithms: ``synthesis`` (DeepFault), ``differential`` (DeepXplore) with ``climbing`` (its
  objective and pool of climbing seeds), ``constraints`` (image transformations),
  ``adversarial`` (FGSM), ``retraining``, ``fuzzing`` (DeepHunter, TensorFuzz) with
  ``mutations`` (its image mutations);
- experiments and front ends, also loaded on first use but left out of ``import *``:
  ``experiments``, ``plots``, ``widgets``, ``reproduce``, ``report``, ``cli``, ``course``
  (the teaching course's student and HTML versions), ``selfcheck`` (the course's exercise
  checks).
"""

import importlib
import os as _os
import platform as _platform
from importlib import metadata as _metadata
from typing import TYPE_CHECKING


def _xla_cpu_options() -> None:
    """Turns on oneDNN for XLA's CPU convolutions and matmuls (``--xla_cpu_use_onednn=true``).

    XLA's own CPU convolution is the floor of every model-level pass. On a loaded 2-core x86
    machine oneDNN seemed to halve a LeNet's forward pass; re-measured on the idle machine, the
    forward pass took the same time with and without it, with the same logits
    (``benchmarks/bench_forward.py``; README, Performance). XLA reads ``XLA_FLAGS`` when
    JAX first uses the CPU, so this takes effect only if nothing ran on it before
    ``workbench`` (or any of its modules) was imported. Set only on x86-64 with jaxlib 0.10 or
    newer (an unknown flag aborts XLA); a user's own ``--xla_cpu_use_onednn`` wins, and
    ``WORKBENCH_XLA_DEFAULTS=0`` leaves ``XLA_FLAGS`` untouched.
    """
    flags = _os.environ.get("XLA_FLAGS", "")
    if _os.environ.get("WORKBENCH_XLA_DEFAULTS", "1") == "0" or "xla_cpu_use_onednn" in flags:
        return
    if _platform.machine().lower() not in ("x86_64", "amd64"):
        return
    try:
        major, minor = (int(part) for part in _metadata.version("jaxlib").split(".")[:2])
    except (_metadata.PackageNotFoundError, ValueError):
        return
    if (major, minor) >= (0, 10):
        _os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_use_onednn=true".strip()


_xla_cpu_options()

if TYPE_CHECKING:  # for type checkers and editors; at run time each module loads on first use
    from workbench import (
        activations,
        adversarial,
        climbing,
        cluster_coverage,
        clustering,
        constraints,
        coverage,
        data,
        differential,
        files,
        fuzzing,
        idc,
        keras,
        models,
        mutations,
        nlc,
        passes,
        patterns,
        prioritisation,
        profiles,
        retraining,
        sign_coverage,
        sites,
        sources,
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
    "climbing",
    "cluster_coverage",
    "clustering",
    "constraints",
    "coverage",
    "data",
    "differential",
    "files",
    "fuzzing",
    "idc",
    "keras",
    "models",
    "mutations",
    "nlc",
    "passes",
    "patterns",
    "prioritisation",
    "profiles",
    "retraining",
    "sign_coverage",
    "sites",
    "sources",
    "spectra",
    "stats",
    "streaming",
    "surprise",
    "suspiciousness",
    "synthesis",
    "train",
    "validation",
]
# Experiments and front ends: loaded on first use too, but not by ``from workbench import *``.
_ON_DEMAND = (
    "cli",
    "course",
    "experiments",
    "plots",
    "report",
    "reproduce",
    "selfcheck",
    "widgets",
)
__version__ = "0.1.0"


def __getattr__(name: str):
    """Imports a module on first use (PEP 562), so ``workbench --help`` starts without JAX.

    Example:
        >>> import workbench
        >>> workbench.coverage.__name__
        'workbench.coverage'
        >>> workbench.course.__name__
        'workbench.course'
    """
    if name in __all__ or name in _ON_DEMAND:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_ON_DEMAND})
