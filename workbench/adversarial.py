"""Adversarial inputs by the fast gradient sign method, the baseline DeepXplore compares with.

``x_adv = clip(x + epsilon * sign(grad_x CE(model(x), y)), 0, 1)``: one step up the
cross-entropy loss of the true label, bounded in the max norm by ``epsilon``.

References:
    Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
    section 4 (equation for the fast gradient sign method).
    Pei et al., DeepXplore, SOSP 2017, section 7.3 (Table 6 and Figure 9 compare DeepXplore's
    inputs with FGSM's for coverage and retraining).
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import ArrayLike, Float, Shaped

from workbench import activations, validation

__all__ = ["fgsm"]

Model = Any  # a Flax NNX model (only the model layer imports Flax)


@functools.partial(jax.jit, static_argnames=("graphdef", "clip"))
def _fgsm_jit(graphdef, state, x, labels, epsilon, *, clip):
    def loss(x):
        # The logits of ``neurons``, not ``activations.forward``: a model written like the
        # README's ``MyNet`` sows under its layers' names, which Flax refuses outside a capture.
        logits = activations.neurons(graphdef, state, x).logits
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()

    adv = x + epsilon * jnp.sign(jax.grad(loss)(x))
    return jnp.clip(adv, 0.0, 1.0) if clip else adv


def fgsm(model: Model, x: Shaped[ArrayLike, "n ..."], labels: Shaped[ArrayLike, " _n"], *,
         epsilon: float = 0.1, clip: bool = True, batch_size: int = 1000
         ) -> Float[np.ndarray, "n ..."]:
    """Fast gradient sign method: each input moved by ``epsilon`` along the sign of the input
    gradient of its cross-entropy loss.

    Jitted once per model structure and batch size; ``epsilon`` is a traced value. Inputs are
    processed in fixed-size batches (the last one zero-padded).

    Args:
        model: an NNX model returning logits.
        x: inputs ``(n, ...)`` in [0, 1], floating point, finite.
        labels: ``int[n]``, the classes to move away from (true labels, or predictions).
        epsilon: the max-norm size of the step.
        clip: clip the result to [0, 1].
        batch_size: inputs per jitted call.

    Returns:
        ``float32[n, ...]`` adversarial inputs.

    Example:
        >>> from workbench import models
        >>> net = models.create("lenet1", seed=0)
        >>> x = np.full((2, 28, 28, 1), 0.5, np.float32)
        >>> adv = fgsm(net, x, np.array([3, 7]), epsilon=0.1)
        >>> bool(np.all(np.isclose(np.abs(adv - x), 0.1) | (adv == x)))
        True

    References:
        Goodfellow et al., ICLR 2015, section 4.
    """
    x = np.asarray(validation.images(x, "x"), np.float32)
    labels = validation.labels(labels, len(x))
    epsilon = validation.scalar(epsilon, "epsilon", minimum=0.0)
    batch_size = validation.positive_int(batch_size, "batch_size")
    graphdef, state = activations.split(model)
    if len(x) == 0:
        return np.zeros_like(x, np.float32)
    activations.check_model_input((graphdef, state), x, "x")
    out = []
    for start in range(0, len(x), batch_size):
        chunk, chunk_labels = x[start:start + batch_size], labels[start:start + batch_size]
        pad = batch_size - len(chunk) if len(x) > batch_size else 0
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            chunk_labels = np.concatenate([chunk_labels, np.zeros(pad, chunk_labels.dtype)])
        adv = _fgsm_jit(graphdef, state, jnp.asarray(chunk, jnp.float32),
                        jnp.asarray(chunk_labels, jnp.int32), epsilon, clip=bool(clip))
        out.append(np.asarray(adv)[:len(adv) - pad])
    return np.concatenate(out)
