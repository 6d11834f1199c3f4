"""DeepXplore's generator: neuron choice, joint objective, generation on real MNIST LeNets and
on a user's own NNX model."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import activations, climbing, constraints, models, train
from workbench import differential as dx

KEY = jax.random.key(0)


# --------------------------------------------------------------------------- neuron choice


def test_choose_draws_only_uncovered_neurons_uniformly():
    covered = jnp.array([True, False, True, False, False, True])
    draws = np.asarray(climbing._choose(KEY, covered, 6000))
    counts = np.bincount(draws, minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    np.testing.assert_allclose(counts[[1, 3, 4]] / 6000, 1 / 3, atol=0.03)
    everything = np.asarray(climbing._choose(KEY, jnp.ones(4, bool), 4000))
    np.testing.assert_allclose(np.bincount(everything, minlength=4) / 4000, 0.25, atol=0.03)


# --------------------------------------------------------------------------- joint objective


def _tiny(seed, pool="pool"):
    return models.Sequential(
        plan=(("conv", 2, 3, "SAME"), (pool,), ("dense", 5), ("dense", 3)),
        input_shape=(6, 6, 1), activation="leaky", rngs=nnx.Rngs(params=seed, dropout=seed))


def _tiny_trio():
    """Three tiny untrained models that agree on 36 of :func:`_tiny_seeds`."""
    return [_tiny(0), _tiny(4), _tiny(7)]


def _tiny_seeds():
    return np.asarray(jax.random.uniform(jax.random.key(8), (48, 6, 6, 1)))


@pytest.mark.parametrize("scores", ["probabilities", "logits"])
def test_joint_objective_value_matches_its_definition(scores):
    nets = [_tiny(0), _tiny(1)]
    x = jnp.asarray(np.random.default_rng(4).uniform(size=(3, 6, 6, 1)), jnp.float32)
    labels = jnp.array([0, 2, 1])
    neurons = jnp.array([[0, 3, 7], [12, 1, 14]])
    value = dx.joint_objective(nets, x, labels, neurons, target=1, weight_diff=2.0,
                               weight_nc=0.5, scores=scores)
    expected = np.zeros(3)
    for k, (net, sign) in enumerate(zip(nets, (1.0, -2.0))):
        t = activations.trace(net, x, convention="deepxplore_raw")
        flat = np.asarray(activations.flatten(t.acts))
        logits = np.asarray(net(x), np.float64)
        if scores == "probabilities":  # the paper's F: softmax outputs
            logits = np.exp(logits - logits.max(1, keepdims=True))
            logits /= logits.sum(1, keepdims=True)
        expected += sign * logits[np.arange(3), labels] + 0.5 * flat[np.arange(3), neurons[k]]
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-5, atol=1e-6)


def test_joint_objective_gradient_matches_finite_differences():
    # Global average pooling keeps the objective smooth but for leaky-ReLU kinks, which a
    # step of 1e-3 almost never crosses.
    nets = [_tiny(2, "gap"), _tiny(3, "gap"), _tiny(4, "gap")]
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.uniform(size=(2, 6, 6, 1)), jnp.float32)
    labels, neurons = jnp.array([1, 2]), jnp.array([[2, 11], [5, 9], [14, 0]])  # 15 each

    def f(xs):  # the objective's sum over x, for every x in xs: one batched call
        values = dx.joint_objective(nets, jnp.concatenate(xs), jnp.tile(labels, len(xs)),
                                    jnp.tile(neurons, len(xs)), target=0, weight_diff=1.0,
                                    weight_nc=0.1)
        return np.asarray(values, np.float64).reshape(len(xs), -1).sum(axis=1)

    graphdefs, states = zip(*(activations.split(net) for net in nets))
    weights = climbing.objective_weights(3, jnp.zeros(2, jnp.int32), 1.0)
    np.testing.assert_array_equal(np.asarray(weights), [[-1, -1], [1, 1], [1, 1]])
    grad = np.asarray(jax.grad(lambda x: climbing.objective(
        graphdefs, states, x, labels, neurons, weights, 0.1, "probabilities")[0].sum())(x))
    eps = 1e-3
    directions = rng.normal(size=(3, *x.shape)).astype(np.float32)
    values = f([x + sign * eps * d for d in directions for sign in (1, -1)]).reshape(3, 2)
    numeric = (values[:, 0] - values[:, 1]) / (2 * eps)
    np.testing.assert_allclose((grad * directions).sum(axis=(1, 2, 3, 4)), numeric, rtol=1e-2,
                               atol=1e-3)


# --------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def trio(trained):
    return [trained(name) for name in ("lenet1", "lenet4", "lenet5")]


@pytest.fixture(scope="module")
def seeds(data_root):
    from workbench import data

    return data.load("mnist", "test", root=data_root).images[:48]


def _check_findings(result, nets, seeds):
    assert result.inputs.shape[1:] == seeds.shape[1:]
    n = len(result.inputs)
    assert result.seed_index.shape == result.iterations.shape == (n,)
    assert result.predictions.shape == (3, n)
    again = np.stack([train.predict(net, result.inputs) for net in nets])
    np.testing.assert_array_equal(again, result.predictions)
    assert np.all(np.any(again != again[:1], axis=0))
    before = np.stack([train.predict(net, seeds) for net in nets])
    already = np.flatnonzero(np.any(before != before[:1], axis=0))
    np.testing.assert_array_equal(result.seed_index[result.iterations == 0], already)
    assert result.seeds_climbed == len(seeds) - len(already)
    np.testing.assert_array_equal(result.inputs[result.iterations == 0], seeds[already])


def _numpy_coverage(net, inputs, threshold):
    acts = activations.trace(net, jnp.asarray(inputs), convention="deepxplore").acts
    return {site: (np.asarray(v) > threshold).any(axis=0) for site, v in acts.items()}


def _target_differs(result):
    """Per found input: whether its target's prediction differs from every other model's."""
    p, t = result.predictions, result.targets
    own = p[t, np.arange(p.shape[1])]
    others = np.arange(len(p))[:, None] != t[None, :]
    return np.all((p != own) | ~others, axis=0)


@pytest.mark.parametrize("name", ["light", "occlusion", "blackout", "occlusion at (0, 0)"])
def test_generate_finds_real_disagreements_within_the_constraint(trio, seeds, name):
    transformation = constraints.occlusion(start=(0, 0)) if name.endswith("(0, 0)") else name
    # Blackout moves only a few 10x10 patches a step: on these 41 seeds it may find nothing in 8.
    iterations = 12 if name == "blackout" else 8
    r = dx.generate(trio, seeds, transformation=transformation, key=KEY, batch_size=16,
                    iterations=iterations)
    _check_findings(r, trio, seeds)
    climbed = r.iterations > 0
    assert climbed.any()
    assert _target_differs(r)[climbed].all()  # the paper's stop: the target left the others
    assert r.inputs.min() >= 0 and r.inputs.max() <= 1
    change = r.inputs - seeds[r.seed_index]
    if name == "occlusion at (0, 0)":  # the released code's corner
        outside = np.ones(seeds.shape[1:], bool)
        outside[:10, :10] = False
        assert not change[:, outside].any()
    if name == "occlusion":  # the paper's: one 10x10 rectangle anywhere, per seed
        corners = set()
        for image in change[climbed]:
            rows, cols = np.nonzero(image[..., 0])
            if len(rows):
                assert rows.max() - rows.min() < 10 and cols.max() - cols.min() < 10
                corners.add((rows.min() // 10, cols.min() // 10))
        assert len(corners) > 1
    if name == "blackout":
        assert (change <= 0).all()
    assert r.iterations.max() <= iterations
    # Coverage is exactly what the reported inputs cover, by DeepXplore's convention.
    for net, masks, ratio in zip(trio, r.covered, r.coverage_after):
        expected = _numpy_coverage(net, r.inputs, 0.0)
        assert list(masks) == list(expected)
        for site in masks:
            np.testing.assert_array_equal(masks[site], expected[site])
        total = sum(m.size for m in masks.values())
        assert ratio == pytest.approx(sum(m.sum() for m in masks.values()) / total)
    np.testing.assert_array_equal(r.coverage_before, 0.0)


@pytest.mark.parametrize("step", [10.0, 0.5])
def test_clipped_light_is_one_brightness_change_per_image(trio, seeds, step):
    # The paper's lighting: every pixel changed by the same amount. A found input is its seed
    # plus a single constant, clipped to [0, 1], however many steps it took.
    r = dx.generate(trio, seeds, transformation="light", iterations=20, key=KEY, batch_size=16,
                    step=step)
    climbed = np.flatnonzero(r.iterations > 0)
    assert len(climbed) and (r.iterations[climbed] > 1).any()
    interior = 0
    for i in climbed:
        found, seed = r.inputs[i], seeds[r.seed_index[i]]
        inside = (found > 0) & (found < 1)
        if inside.any():
            shift = (found - seed)[inside]
            constant = float(np.median(shift))
            interior += 1
        else:  # every pixel clipped: all white (brightened) or all black (darkened)
            assert np.all(found == found.flat[0])
            constant = 2.0 if found.flat[0] == 1 else -2.0
        np.testing.assert_allclose(found, np.clip(seed + constant, 0, 1), atol=2e-6)
    assert interior > 0


def test_unclipped_light_is_a_uniform_shift_and_quantisation_is_counted(trio, seeds):
    r = dx.generate(trio, seeds, transformation="light", iterations=5, key=KEY, clip=False,
                    batch_size=16, threshold=0.25)
    _check_findings(r, trio, seeds)
    change = r.inputs - seeds[r.seed_index]
    np.testing.assert_allclose(
        change, np.broadcast_to(change.mean(axis=(1, 2, 3), keepdims=True), change.shape),
        atol=1e-4)
    assert (r.iterations > 0).any() and np.abs(change).max() > 1  # out of range, as released
    stored = dx.quantize(r.inputs).astype(np.float32)
    again = np.stack([train.predict(net, stored) for net in trio])
    np.testing.assert_array_equal(r.survives_quantisation, np.any(again != again[:1], axis=0))


def test_target_is_drawn_per_seed_or_fixed(trio, seeds):
    drawn = dx.generate(trio, seeds, iterations=5, key=KEY, batch_size=16)
    assert drawn.seed_targets.shape == (len(seeds),)
    assert set(drawn.seed_targets.tolist()) == {0, 1, 2}  # 48 seeds, three models
    np.testing.assert_array_equal(drawn.targets, drawn.seed_targets[drawn.seed_index])
    again = dx.generate(trio, seeds, iterations=5, key=KEY, batch_size=8)
    np.testing.assert_array_equal(again.seed_targets, drawn.seed_targets)  # per seed, not slot
    fixed = dx.generate(trio, seeds, iterations=5, key=KEY, batch_size=16, target=2)
    assert (fixed.seed_targets == 2).all()
    climbed = fixed.iterations > 0
    assert _target_differs(fixed)[climbed].all()


def test_the_released_codes_variant(trio, seeds):
    code = dx.generate(trio, seeds, iterations=5, key=KEY, batch_size=16, clip=False,
                       **dx.VARIANTS["code"])
    _check_findings(code, trio, seeds)
    assert (code.seed_targets == 0).all()
    climbed = code.iterations > 0
    assert climbed.any()
    # Stopped at the first disagreement of any two models: not always the target leaving.
    preds = code.predictions[:, climbed]
    assert np.all(np.any(preds != preds[:1], axis=0))


def test_a_new_neuron_every_iteration_or_once_per_seed():
    x = _tiny_seeds()[:8]
    graphdefs, states, counts = dx._check_models(_tiny_trio(), x)
    hyper = {"weight_diff": 1.0, "weight_nc": 0.1, "step": 10.0, "iterations": jnp.int32(5),
             "threshold": 0.0}
    context, (p, r) = climbing.setup(graphdefs, states, x, np.ones(8, bool),
                                     dx._initial_coverage(counts, None), KEY, 0.0,
                                     jnp.int32(-1), slots=8)
    assert np.asarray(p["active"]).any()
    for per_iteration in (True, False):
        options = climbing.Options(dx._transformation("light"), True, "probabilities",
                                   "target", per_iteration)
        carry = climbing._with_optimizer((p, r), options.transformation, hyper["step"])
        after, _, _ = climbing._step_jit(graphdefs, states, context, carry, hyper,
                                         options=options)
        same_seed = np.asarray(after["active"] & (after["seed_id"] == p["seed_id"]))
        assert same_seed[np.asarray(p["active"])].all()  # nothing stops at iteration 0
        unchanged = np.asarray(after["neurons"] == p["neurons"])[:, same_seed]
        assert not unchanged.all() if per_iteration else unchanged.all()


def test_generate_is_deterministic_under_key_and_continues_coverage(trio, seeds):
    run = {"transformation": "blackout", "iterations": 6, "batch_size": 8, "threshold": 0.5}
    a = dx.generate(trio, seeds[:24], key=jax.random.key(3), **run)
    b = dx.generate(trio, seeds[:24], key=jax.random.key(3), **run)
    for field in ("inputs", "seed_index", "predictions", "iterations"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    c = dx.generate(trio, seeds[24:], key=jax.random.key(4), covered=a.covered, **run)
    np.testing.assert_array_equal(c.coverage_before, a.coverage_after)
    assert (c.coverage_after >= c.coverage_before).all()
    for old, new in zip(a.covered, c.covered):
        for site in old:
            assert (new[site] | ~old[site]).all()  # nothing is uncovered again


def test_host_and_device_loops_agree(monkeypatch):
    # The CPU drives the iterations from the host; other backends run one while_loop. Both
    # run the same step, so they find the same inputs. 36 climbing seeds refill the slots;
    # batch 32 also shrinks the pool to 16 (the narrowest). Occlusion draws its rectangle from
    # each seed's key, blackout its patches from each step's.
    nets, seeds = _tiny_trio(), _tiny_seeds()
    assert climbing._pool_sizes(16) == [16] and climbing._pool_sizes(32) == [32, 16]
    assert climbing._pool_sizes(256) == [256, 168, 112, 72, 48, 32, 16]
    patches, rectangle = constraints.blackout(size=(2, 2)), constraints.occlusion(size=(3, 3))
    for transformation, batch_size in ((patches, 32), (rectangle, 16)):
        run = {"transformation": transformation, "iterations": 6, "batch_size": batch_size,
               "key": KEY}
        monkeypatch.setattr(climbing, "climber", lambda: climbing._climb_from_host)
        host = dx.generate(nets, seeds, **run)
        monkeypatch.setattr(climbing, "climber", lambda: climbing._climb_on_device)
        device = dx.generate(nets, seeds, **run)
        assert host.seeds_climbed == device.seeds_climbed > batch_size  # some slots refilled
        assert (host.iterations > 0).any() and (host.iterations > 1).any()
        for field in ("seed_index", "predictions", "iterations", "coverage_after"):
            np.testing.assert_array_equal(getattr(host, field), getattr(device, field))
        # XLA fuses the two programs differently: the RMS normalisation rounds apart by ~1e-6,
        # ten steps of size 10 make it ~1e-4 in a pixel; the discrete outcomes above are equal.
        np.testing.assert_allclose(host.inputs, device.inputs, atol=2e-4)


def test_the_host_loop_narrows_the_pool_to_its_busy_slots():
    assert climbing._narrower(223, 256) == 224 and climbing._narrower(91, 112) == 96
    assert climbing._narrower(100, 112) == 112  # 112 -> 112 saves nothing
    # 16 is the narrowest
    assert climbing._narrower(3, 32) == 16 and climbing._narrower(5, 16) == 16


@pytest.mark.parametrize("transformation", [constraints.occlusion(size=(3, 3)),
                                            constraints.blackout(size=(2, 2))])
def test_a_seeds_result_does_not_depend_on_the_pools_widths(monkeypatch, transformation):
    # Neurons and blackout's patches are drawn per seed and iteration, and the pool shrinks
    # only once the queue is empty: narrowing it (32 -> 16) or not changes nothing a seed finds.
    nets, seeds = _tiny_trio(), _tiny_seeds()
    run = {"transformation": transformation, "iterations": 6, "batch_size": 32, "key": KEY}
    monkeypatch.setattr(climbing, "climber", lambda: climbing._climb_from_host)
    shrinking = dx.generate(nets, seeds, **run)
    monkeypatch.setattr(climbing, "_narrower", lambda busy, width: width)
    full = dx.generate(nets, seeds, **run)
    assert (shrinking.iterations > 1).any()
    for field in ("seed_index", "predictions", "iterations", "coverage_after"):
        np.testing.assert_array_equal(getattr(shrinking, field), getattr(full, field))
    np.testing.assert_allclose(shrinking.inputs, full.inputs, atol=1e-5)


def test_target_and_weights_do_not_recompile(monkeypatch):
    chex.clear_trace_counter()
    counted = jax.jit(chex.assert_max_traces(climbing._step, n=1),
                      static_argnames=("graphdefs", "options"))
    monkeypatch.setattr(climbing, "climber", lambda: climbing._climb_from_host)
    monkeypatch.setattr(climbing, "_step_jit", counted)
    nets, seeds = _tiny_trio(), _tiny_seeds()
    dx.generate(nets, seeds[:8], key=KEY, iterations=2, batch_size=8)
    dx.generate(nets, seeds[8:16], key=jax.random.key(1), iterations=3, batch_size=8,
                weight_diff=2.0, weight_nc=0.0, step=1.0, threshold=0.5, target=2)
    dx.generate(nets, seeds[16:24], key=jax.random.key(2), iterations=2, batch_size=8,
                target=None)


def test_bad_input_is_rejected(trio, seeds):
    with pytest.raises(ValueError, match="unknown transformation"):
        dx.generate(trio, seeds, transformation="fog", key=KEY)
    with pytest.raises(ValueError, match="at least two models"):
        dx.generate(trio[:1], seeds, key=KEY)
    with pytest.raises(ValueError, match="NaN"):
        dx.generate(trio, np.full_like(seeds[:2], np.nan), key=KEY)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dx.generate(trio, seeds[:2] * 3, key=KEY)
    with pytest.raises(ValueError, match="shape"):
        dx.generate(trio, seeds[:2, :20], key=KEY)
    with pytest.raises(ValueError, match="target"):
        dx.generate(trio, seeds[:2], key=KEY, target=3)
    with pytest.raises(ValueError, match="target must be a model index"):
        dx.generate(trio, seeds[:2], key=KEY, target=True)
    with pytest.raises(ValueError, match="unknown scores"):
        dx.generate(trio, seeds[:2], key=KEY, scores="softmax")
    with pytest.raises(ValueError, match="unknown stop"):
        dx.generate(trio, seeds[:2], key=KEY, stop="all")
    with pytest.raises(ValueError, match="unknown neuron_choice"):
        dx.generate(trio, seeds[:2], key=KEY, neuron_choice="layer")
    with pytest.raises(ValueError, match="key"):
        dx.generate(trio, seeds[:2], key=0)
    nets = [_tiny(0), _tiny(1)]
    with pytest.raises(ValueError, match="neurons"):
        dx.joint_objective(nets, jnp.zeros((1, 6, 6, 1)), jnp.array([0]), jnp.array([[0], [15]]))
    with pytest.raises(ValueError, match="labels"):
        dx.joint_objective(nets, jnp.zeros((1, 6, 6, 1)), jnp.array([3]), jnp.array([[0], [1]]))
    with pytest.raises(ValueError, match="do not fit"):
        dx.generate([trio[0], _tiny(0)], seeds[:2], key=KEY)


def test_a_legacy_prng_key_and_a_transformation_object_are_accepted(trio, seeds):
    run = {"iterations": 3, "batch_size": 8, "threshold": 0.5}
    new = dx.generate(trio, seeds[:8], key=jax.random.key(5), **run)
    legacy = dx.generate(trio, seeds[:8], key=jax.random.PRNGKey(5),
                         transformation=constraints.light(), **run)
    for field in ("inputs", "seed_index", "predictions", "iterations", "coverage_after"):
        np.testing.assert_array_equal(getattr(new, field), getattr(legacy, field))


# --------------------------------------------------------------------------- a user's model


class MyNet(nnx.Module):
    """The README's example model, without ``sites`` and without ``input_shape``."""

    def __init__(self, rngs):
        self.fc1 = nnx.Linear(784, 64, rngs=rngs)
        self.fc2 = nnx.Linear(64, 32, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))
        self.sow(nnx.Intermediate, "fc1", h)
        z = self.fc2(h)
        self.sow(activations.PreActivation, "fc2", z)
        h = nnx.relu(z)
        self.sow(nnx.Intermediate, "fc2", h)
        return self.out(h)


def test_a_users_own_models_go_through_generate():
    nets = [MyNet(nnx.Rngs(0)), MyNet(nnx.Rngs(1))]
    assert not hasattr(nets[0], "input_shape") and not hasattr(nets[0], "sites")
    seeds = np.asarray(jax.random.uniform(jax.random.key(2), (32, 28, 28, 1)))
    r = dx.generate(nets, seeds, transformation="none", iterations=5, key=KEY, batch_size=8,
                    threshold=0.5)
    before = np.stack([np.argmax(activations.trace(net, seeds).logits, -1) for net in nets])
    agree = np.flatnonzero(before[0] == before[1])
    assert r.seeds_climbed == len(agree) > 0
    np.testing.assert_array_equal(r.seed_index[r.iterations == 0],
                                  np.flatnonzero(before[0] != before[1]))
    assert (r.iterations > 0).any()
    again = np.stack([np.argmax(activations.trace(net, r.inputs).logits, -1) for net in nets])
    np.testing.assert_array_equal(again, r.predictions)
    assert np.all(again[0] != again[1])
    np.testing.assert_array_equal(dx.predictions(nets, r.inputs), again)
    for net, masks in zip(nets, r.covered):
        expected = _numpy_coverage(net, r.inputs, 0.5)
        assert list(masks) == list(expected) == ["fc1", "fc2", "logits", "softmax"]
        for site in masks:
            np.testing.assert_array_equal(masks[site], expected[site])
    value = dx.joint_objective(nets, seeds[:2], jnp.array([1, 2]), jnp.array([[0, 70], [5, 9]]))
    assert value.shape == (2,)
