"""Sign-sign coverage (DeepCover's MC/DC-style criterion) for adjacent layers.

For neuron ``i`` of layer ``k`` and neuron ``j`` of the next layer ``k + 1``, a pair of inputs
``(x1, x2)`` *sign-sign covers* ``(i, j)`` when ``i`` changes sign between them, no other
neuron of layer ``k`` does, and ``j`` changes sign: the change of ``i`` alone decides ``j``'s
sign, the MC/DC condition of a decision on its conditions. The sign of a neuron is
``value > 0`` (for a ReLU, whether it is active, the same before or after the activation).
Here every unordered pair of the given inputs is tried (``n (n - 1) / 2`` pairs, done as one
matrix product per input on the device); the coverage is the covered fraction of the
``m_k * m_(k+1)`` neuron pairs.

References:
    Sun, Huang, Kroening, Sharp, Hill and Ashmore, "Structural Test Coverage Criteria for
    Deep Neural Networks", ACM TECS 18(5s), 2019 (also "Testing Deep Neural Networks",
    arXiv:1803.04792), section 3, Definition 3.3 (sign-sign cover) and the SS coverage
    ``M_SS``.
"""

import itertools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from workbench import validation

__all__ = ["sign_sign_coverage"]


@jax.jit
def _ss_jit(lower, upper):
    s = (lower > 0).astype(jnp.float32)  # (n, m_k)
    t = (upper > 0).astype(jnp.float32)  # (n, m_k1)
    n = s.shape[0]

    def one(a):
        flips = jnp.abs(s - s[a][None])  # (n, m_k): which neurons of layer k change sign
        alone = (flips.sum(axis=1) == 1) & (jnp.arange(n) > a)  # each unordered pair once
        changed = jnp.abs(t - t[a][None])
        return (flips * alone[:, None]).T @ changed > 0

    def body(a, covered):
        return covered | one(a)

    return jax.lax.fori_loop(0, n, body, jnp.zeros((s.shape[1], t.shape[1]), bool))


def sign_sign_coverage(acts: validation.Acts) -> dict[str, Bool[Array, "_lower _upper"]]:
    """Sign-sign coverage of each pair of adjacent sites in ``acts`` (in its order): which
    neuron pairs ``(i in site k, j in site k + 1)`` some pair of the inputs covers.

    Args:
        acts: ``{site: (batch, neurons)}`` in layer order (say, the dense layers, read under
            the ``"pre"`` convention); at least two sites.

    Returns:
        ``{"lower->upper": bool[m_lower, m_upper]}``; the coverage is
        ``workbench.coverage.ratio`` of it.

    Example:
        >>> acts = {"fc1": jnp.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0]]),
        ...         "fc2": jnp.array([[1.0], [-1.0], [-1.0]])}
        >>> sign_sign_coverage(acts)["fc1->fc2"].tolist()  # inputs 0, 1: only fc1[0] flips
        [[True], [False]]

    References:
        Sun et al., ACM TECS 2019, section 3, Definition 3.3.
    """
    acts = validation.acts(acts)
    sites = list(acts)
    if len(sites) < 2:
        raise ValueError(f"acts needs at least two sites (adjacent layers), got {sites}")
    return {f"{a}->{b}": _ss_jit(acts[a], acts[b]) for a, b in itertools.pairwise(sites)}
