"""workbench: test deep neural networks from the inside, in JAX.

Modules, one concept each: ``data`` (MNIST, CIFAR-10), ``models`` (the zoo), ``activations``
(neurons of any NNX model), ``train`` (Optax training, safe checkpoints).
"""

from workbench import activations
from workbench import data
from workbench import models
from workbench import train

__all__ = ["activations", "data", "models", "train"]
__version__ = "0.1.0"
