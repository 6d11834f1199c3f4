"""DeepXplore's climb: its joint objective, ascended by a pool of seeds advancing together.

:func:`workbench.differential.generate` checks its arguments and calls :func:`setup` (which
seeds the models already disagree on, and the first pool), then runs :func:`climber`'s loop
(the iterations of :func:`_step` over a pool of slots, each holding one seed; the pool narrows
once no seed is queued). Every random draw is keyed by a slot's seed and iteration, so a seed's
climb depends neither on its slot nor on the pool's width. :func:`objective` is the joint
objective of :func:`workbench.differential.joint_objective`, pure, for use inside a jit or grad.

References:
    Pei, Cao, Yang, Jana, "DeepXplore: Automated Whitebox Testing of Deep Learning Systems",
    SOSP 2017, section 5 (Algorithm 1) and section 6; the released code,
    github.com/peikexin9/deepxplore, ``MNIST/gen_diff.py``.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from workbench import activations, constraints, coverage

__all__ = ["Options", "climber", "objective", "objective_weights", "setup"]

# The neurons DeepXplore's objective climbs (raw) and those its coverage counts (scaled).
_RAW = activations.CONVENTIONS["deepxplore_raw"]
_SCALED = activations.CONVENTIONS["deepxplore"]


class Options(NamedTuple):
    """What :func:`workbench.differential.generate` compiles into the climb (a static
    argument): the step's Optax transformation, clipping, scores, stop rule, neuron choice."""

    transformation: optax.GradientTransformation
    clip: bool
    scores: str
    stop: str
    per_iteration: bool  # a new neuron every iteration (else once per seed)


# --------------------------------------------------------------------------- objective


def _forward(graphdefs, states, x):
    """Per model: logits, raw neuron values ``(n, total)`` and min-max scaled ones. Pure; flat
    arrays in layer order, since a dict crossing a transformation comes back sorted."""
    out = []
    for graphdef, state in zip(graphdefs, states):
        raw = activations.neurons(graphdef, state, x, _RAW)
        scaled = activations.neurons(graphdef, state, x, _SCALED)
        out.append((raw.logits, activations.flatten(raw.acts), activations.flatten(scaled.acts)))
    return out


def objective(graphdefs, states, x, label, neurons, weights, weight_nc, scores):
    """Per-seed joint objective and, as auxiliaries, the predictions and scaled activations.

    Pure (for use inside a jit or grad; ``graphdefs`` and ``scores`` static): what
    :func:`workbench.differential.joint_objective` computes once its arguments are checked.
    ``weights`` is ``(models, n)`` (:func:`objective_weights`): 1 for the models kept on the
    label, ``-lambda1`` for each input's target.

    References:
        DeepXplore, section 5.2, equations (2)-(3).
    """
    passes = _forward(graphdefs, states, x)
    total = jnp.zeros(x.shape[0], x.dtype)
    for k, (logits, flat, _) in enumerate(passes):
        score = jax.nn.softmax(logits, axis=-1) if scores == "probabilities" else logits
        agreed = jnp.take_along_axis(score, label[:, None], axis=1)[:, 0]
        neuron = jnp.take_along_axis(flat, neurons[k][:, None], axis=1)[:, 0]
        total = total + weights[k] * agreed + weight_nc * neuron
    preds = jnp.stack([jnp.argmax(logits, axis=-1) for logits, _, _ in passes])
    scaled = [jax.lax.stop_gradient(acts) for _, _, acts in passes]
    return total, (preds, scaled)


def objective_weights(n_models, targets, weight_diff):
    """``(models, n)``: ``-weight_diff`` where the model is the input's target, else 1."""
    return jnp.where(jnp.arange(n_models)[:, None] == targets[None, :], -weight_diff, 1.0)


# --------------------------------------------------------------------------- the pool


def _covered_by(scaled, rows, threshold):
    """Flat ``bool[total]`` of the neurons covered by ``rows`` of one model's scaled acts
    ``(n, total)`` (already min-max scaled per layer, hence ``minmax_per_input=False``)."""
    return coverage.neuron_coverage({"all": scaled}, threshold=threshold,
                                    minmax_per_input=False, mask=rows)["all"]


def _choose(key, covered, count):
    """``count`` neurons drawn uniformly from the uncovered ones (from all, if none is left)."""
    logits = jnp.where(covered, -jnp.inf, 0.0)
    logits = jnp.where(covered.all(), jnp.zeros_like(logits), logits)
    return jax.random.categorical(key, logits, shape=(count,)).astype(jnp.int32)


def _draw(choose_key, seed_id, it, covered):
    """``int32[models, slots]``: an uncovered neuron per model and slot (:func:`_choose`), keyed
    by the slot's seed and iteration alone: no draw depends on the pool's width or slot."""
    def one(seed, it):
        keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(choose_key, seed), it),
                                len(covered))
        return jnp.stack([_choose(k, c, 1)[0] for k, c in zip(keys, covered)])

    return jax.vmap(one, out_axes=1)(seed_id, it)


def _step_keys(step_key, seed_id, it):
    """A key per slot for this step's constraint (blackout's patches), keyed by the slot's seed
    and iteration alone, like :func:`_draw`: a seed's climb does not depend on its slot."""
    return jax.vmap(lambda s, i: jax.random.fold_in(jax.random.fold_in(step_key, s), i))(
        seed_id, it)


def _disagree(preds):
    return jnp.any(preds != preds[:1], axis=0)


def _differs(preds, targets, stop):
    """Per input: whether the prediction ``(models, n)`` differs. ``"any"``: some two models
    disagree (the released code); ``"target"``: the target's prediction differs from every other
    model's (the paper's ``d.predict(x) != (dnns - d).predict(x)``)."""
    if stop == "any":
        return _disagree(preds)
    own = jnp.take_along_axis(preds, targets[None, :], axis=0)
    other = jnp.arange(preds.shape[0])[:, None] != targets[None, :]
    return jnp.all((preds != own) | ~other, axis=0)


def _pool_sizes(slots: int) -> list[int]:
    """The device loop's pool widths (:func:`_climb_on_device`): each two thirds of the last, in multiples
    of 8, down to 16; it narrows when the queue is empty and the next width holds every
    climbing seed, so seeds climbing to the last iteration keep at least two thirds of the
    slots busy (halving left up to half of them idle)."""
    sizes = [slots]
    while (smaller := sizes[-1] * 2 // 3 // 8 * 8) >= 16:
        sizes.append(smaller)
    return sizes


def _narrower(busy: int, width: int) -> int:
    """The host loop's next pool width once the queue is empty (:func:`_climb_from_host`): the
    busy slots rounded up to a multiple of 16, if that saves at least an eighth of the width,
    else ``width``. Each width is compiled once (at most 16 of them under a pool of 256)."""
    smaller = max(16, -(-busy // 16) * 16)
    return smaller if smaller <= width - width // 8 else width


@functools.partial(jax.jit, static_argnames=("graphdefs", "slots"))
def setup(graphdefs, states, seeds, valid, covered, key, threshold, target, *, slots):
    """Sorts out the seeds the models already disagree on and fills the first pool: returns
    ``(context, carry)``, the constants every step reads and the loop state ``(pool, run)``."""
    n_models = len(graphdefs)
    n = seeds.shape[0]
    choose_key, step_key, target_key, seed_key = jax.random.split(key, 4)

    # 1. Which seeds do the models agree on? The others count for coverage at once.
    def first_pass(covered, chunk):
        x, rows = chunk
        passes = _forward(graphdefs, states, x)
        preds = jnp.stack([jnp.argmax(p[0], axis=-1) for p in passes])
        differ = _disagree(preds) & rows
        covered = tuple(c | _covered_by(p[2], differ, threshold)
                        for c, p in zip(covered, passes))
        return covered, preds

    chunks = (seeds.reshape(n // slots, slots, *seeds.shape[1:]), valid.reshape(-1, slots))
    covered, preds0 = jax.lax.scan(first_pass, covered, chunks)
    preds0 = jnp.moveaxis(preds0, 1, 0).reshape(n_models, n)
    agree = valid & ~_disagree(preds0)
    found = valid & ~agree
    order = jnp.argsort(~agree, stable=True).astype(jnp.int32)  # agreeing seeds first
    n_agree = agree.sum(dtype=jnp.int32)
    # 2. Per seed: its target model (drawn, or the fixed one) and a key kept for its climb.
    drawn = jax.random.randint(target_key, (n,), 0, n_models, dtype=jnp.int32)
    targets = jnp.where(target < 0, drawn, target).astype(jnp.int32)
    seed_keys = jax.vmap(functools.partial(jax.random.fold_in, seed_key))(jnp.arange(n))
    context = {"seeds": seeds, "preds0": preds0, "order": order, "n_agree": n_agree,
               "targets": targets, "seed_keys": seed_keys, "choose_key": choose_key,
               "step_key": step_key}

    slot = jnp.arange(slots, dtype=jnp.int32)
    seed_id = order[jnp.minimum(slot, n - 1)]
    pool = {"x": seeds[seed_id], "seed_id": seed_id, "label": preds0[0, seed_id],
            "target": targets[seed_id],
            "neurons": _draw(choose_key, seed_id, jnp.zeros(slots, jnp.int32), covered),
            "it": jnp.zeros(slots, jnp.int32), "active": slot < n_agree}
    run = {"next": jnp.minimum(n_agree, slots), "covered": covered, "out_x": seeds,
           "out_found": found, "out_it": jnp.zeros(n, jnp.int32), "out_preds": preds0,
           "t": jnp.int32(0)}
    return context, (pool, run)


def _optimizer(transformation, step):
    return optax.chain(constraints.normalize_by_rms(1e-5), transformation, optax.scale(step))


def _view(x, clip):
    """What the models see: the seed plus every step so far, clipped to [0, 1] (``clip``)."""
    return optax.projections.projection_box(x, 0.0, 1.0) if clip else x


def _value_aux_grad(graphdefs, states, p, weights, weight_nc, options):
    def total(x):
        values, aux = objective(graphdefs, states, x, p["label"], p["neurons"], weights,
                                 weight_nc, options.scores)
        return values.sum(), aux
    return jax.value_and_grad(total, has_aux=True)(_view(p["x"], options.clip))


def _step(graphdefs, states, context, carry, hyper, *, options):
    """One iteration of the pool: gradients of every slot, record the slots that now differ,
    step the others, draw fresh neurons, refill the free slots with the next seeds.

    ``p["x"]`` is the seed plus the sum of the steps, unclipped; the models see it clipped
    (:func:`_view`), and the gradient there moves the sum (so under lighting every pixel has
    moved by the same total, whatever clipping hides).
    """
    p, r, opt = carry
    n = context["seeds"].shape[0]
    weights = objective_weights(len(graphdefs), p["target"], hyper["weight_diff"])
    (_, (preds, scaled)), grads = _value_aux_grad(graphdefs, states, p, weights,
                                                  hyper["weight_nc"], options)
    active = p["active"]
    hit = active & (p["it"] > 0) & _differs(preds, p["target"], options.stop)
    spent = active & ~hit & (p["it"] >= hyper["iterations"])
    where = jnp.where(hit, p["seed_id"], n)  # n: out of range, dropped
    covered = tuple(c | _covered_by(acts, hit, hyper["threshold"])
                    for c, acts in zip(r["covered"], scaled))
    r = {"next": r["next"], "covered": covered,
         "out_x": r["out_x"].at[where].set(_view(p["x"], options.clip), mode="drop"),
         "out_found": r["out_found"].at[where].set(True, mode="drop"),
         "out_it": r["out_it"].at[where].set(p["it"], mode="drop"),
         "out_preds": r["out_preds"].at[:, where].set(preds, mode="drop"), "t": r["t"] + 1}
    # Step the slots still climbing.
    climbing = active & ~hit & ~spent
    updates, opt = _optimizer(options.transformation, hyper["step"]).update(
        grads, opt, p["x"], key=jax.random.fold_in(context["step_key"], r["t"]),
        seed_keys=context["seed_keys"][p["seed_id"]],
        step_keys=_step_keys(context["step_key"], p["seed_id"], p["it"]))
    x = jnp.where(climbing[:, None, None, None], p["x"] + updates, p["x"])
    it = jnp.where(climbing, p["it"] + 1, p["it"])
    # Refill the free slots with the next agreeing seeds; fresh neurons from today's coverage.
    free = ~climbing
    candidate = r["next"] + jnp.cumsum(free, dtype=jnp.int32) - 1
    refill = free & (candidate < context["n_agree"])
    new_id = context["order"][jnp.clip(candidate, 0, n - 1)]
    renew = refill | options.per_iteration
    fresh = _draw(context["choose_key"], jnp.where(refill, new_id, p["seed_id"]),
                  jnp.where(refill, 0, it), covered)
    p = {"x": jnp.where(refill[:, None, None, None], context["seeds"][new_id], x),
         "seed_id": jnp.where(refill, new_id, p["seed_id"]),
         "label": jnp.where(refill, context["preds0"][0, new_id], p["label"]),
         "target": jnp.where(refill, context["targets"][new_id], p["target"]),
         "neurons": jnp.where(renew[None], fresh, p["neurons"]),
         "it": jnp.where(refill, 0, it), "active": climbing | refill}
    r["next"] = r["next"] + refill.sum(dtype=jnp.int32)
    return p, r, opt


def _pool_state(context, p, r):
    """``(busy slots, whether seeds are queued)``."""
    return p["active"].sum(), r["next"] < context["n_agree"]


def _keep_going(context, carry, smaller):
    """Whether the pool at this width has work: seeds queued, or more busy slots than the
    next, narrower pool holds (``smaller``; 0 for the last width)."""
    busy, queued = _pool_state(context, *carry[:2])
    return (busy > 0) & (queued | (busy > smaller))


def _shrink(carry, smaller):
    """The pool cut to its ``smaller`` busiest slots (all the busy ones, by the loop's exit)."""
    p, r = carry
    keep = jnp.argsort(~p["active"], stable=True)[:smaller]
    return {name: (v[:, keep] if name == "neurons" else v[keep]) for name, v in p.items()}, r


def _with_optimizer(carry, transformation, step):
    """Adds a fresh state of the step's Optax chain for the pool's current width."""
    p, r = carry
    return p, r, _optimizer(transformation, step).init(p["x"])


@functools.partial(jax.jit, static_argnames=("graphdefs", "options", "slots"))
def _climb_on_device(graphdefs, states, context, carry, hyper, *, options, slots):
    """One program on GPUs and TPUs, no host round trips: every width of the fixed ladder
    (:func:`_pool_sizes`) in turn, iterated in a ``lax.while_loop`` until it has no more work,
    then narrowed."""
    sizes = _pool_sizes(slots)
    for phase in range(len(sizes)):
        smaller = sizes[phase + 1] if phase + 1 < len(sizes) else 0
        *carry, _ = jax.lax.while_loop(
            functools.partial(_keep_going, context, smaller=smaller),
            lambda c: _step(graphdefs, states, context, c, hyper, options=options),
            _with_optimizer(carry, options.transformation, hyper["step"]))
        if smaller:
            carry = _shrink(tuple(carry), smaller=smaller)
    return carry


# The CPU: XLA's CPU backend runs the step ~1.5x slower inside a ``lax.while_loop`` (three
# LeNets, 256 slots: 259 vs 176 ms an iteration); a host round trip per iteration costs little.
# Not donated: the carry's outputs start as the seeds themselves (jit forwards unchanged inputs).
_step_jit = jax.jit(_step, static_argnames=("graphdefs", "options"))
_shrink_jit = jax.jit(_shrink, static_argnames=("smaller",))


_pool_state_jit = jax.jit(_pool_state)


def _climb_from_host(graphdefs, states, context, carry, hyper, *, options, slots):
    """:func:`_climb_on_device`'s loop with each iteration a jitted call of :func:`_step`,
    driven by Python; the pool narrows to fit its busy slots (:func:`_narrower`) rather than
    along a fixed ladder of widths: on the CPU the narrower pool's saving is worth its
    compilation. Three LeNets, 300 seeds, 50 iterations: 91 seeds climb to the end, in 96 slots
    instead of 112."""
    del slots
    width = carry[0]["active"].shape[0]
    carry = _with_optimizer(carry, options.transformation, hyper["step"])
    while True:
        busy, queued = (int(v) for v in _pool_state_jit(context, carry[0], carry[1]))
        if not busy:
            return list(carry[:2])
        if not queued and (smaller := _narrower(busy, width)) < width:
            carry = _with_optimizer(_shrink_jit(carry[:2], smaller=smaller),
                                    options.transformation, hyper["step"])
            width = smaller
        carry = _step_jit(graphdefs, states, context, carry, hyper, options=options)


def climber():
    """The host-driven loop on the CPU, the single device program elsewhere: either, called as
    ``climber()(graphdefs, states, context, carry, hyper, options=..., slots=...)`` on what
    :func:`setup` returned, climbs every seed and returns the final ``(pool, run)``."""
    return _climb_from_host if jax.default_backend() == "cpu" else _climb_on_device
