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
import sys as _sys
from typing import TYPE_CHECKING


def _xla_cpu_options() -> None:
    """Turns on XLA's CPU fast math (``--xla_cpu_enable_fast_math=true``).

    XLA's CPU backend may then reassociate floating-point sums (vectorised reductions, fused
    multiply-adds) while still honouring NaN, infinity, exact division and exact functions
    (its ``xla_cpu_fast_math_honor_*`` flags stay true). Idle 2-core machine, LeNet-1/4/5
    forward over the 10,000 MNIST test images: 0.23-0.26 / 0.31-0.32 / 0.32-0.34 s without,
    0.21-0.22 / 0.26 / 0.26 s with it; a coverage trace 20% faster; results move only by float
    rounding (the whole test suite passes with it). ``--xla_cpu_use_onednn``, set here before,
    changed nothing measurable. XLA reads ``XLA_FLAGS`` when JAX first uses the CPU, so this
    takes effect only if nothing ran on it before ``workbench`` (or any of its modules) was
    imported. A user's own ``--xla_cpu_enable_fast_math`` wins, and ``WORKBENCH_XLA_DEFAULTS=0``
    leaves ``XLA_FLAGS`` untouched.
    """
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_fast_math" not in flags:
        _os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_enable_fast_math=true".strip()


def _compilation_cache() -> None:
    """JAX's persistent compilation cache in this user's cache folder (``jax/`` in
    :func:`workbench.files.cache_folder`, as ``make demo``'s notebooks use), so a new session
    compiles little: DeepXplore's generator compiles a step per pool width (24 s on a first call
    for three LeNets). Left alone when ``$JAX_COMPILATION_CACHE_DIR`` names a folder or
    ``WORKBENCH_XLA_DEFAULTS=0``. Set in the environment, which JAX reads when imported; if
    JAX was imported first, in its config (effective until its first compilation)."""
    if "JAX_COMPILATION_CACHE_DIR" in _os.environ:
        return
    from workbench import files  # the standard library only: cheap

    folder = str(files.cache_folder() / "jax")
    _os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    jax = _sys.modules.get("jax")
    if jax is not None:
        jax.config.update("jax_compilation_cache_dir", folder)


if _os.environ.get("WORKBENCH_XLA_DEFAULTS", "1") != "0":  # the one opt-out of both
    _xla_cpu_options()
    _compilation_cache()

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
