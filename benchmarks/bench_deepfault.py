"""DeepFault: the vectorised spectrum and synthesis against loops shaped like the released code.

Run: ``WORKBENCH_DATA=... python benchmarks/bench_deepfault.py [--seeds-baseline 100]
[--limit-only]``.

1. Hit spectrum of every neuron over the 60,000 MNIST training images on
   ``deepfault_5x30_leaky``: ``passes.model_spectrum`` (one jitted pass per batch of 1,000)
   against the released ``run.py``/``utils.construct_spectrum_matrices`` structure: layer
   outputs from a batched forward pass, then Python loops over layers, inputs and covered /
   uncovered neurons. Membership in the correctly classified inputs is tested in a set (kinder
   than the released code) on all 60,000 images, and in a list, as released (``test_idx in
   correct_classifications``, quadratic in the inputs), on ``--faithful`` images.
2. Synthesis from 1,000 seeds with the 10 most suspicious neurons: ``synthesis.synthesize``
   (all seeds as one batch in one jit, one backward pass a step) against the released ``input_synthesis.py`` structure: per seed
   and per neuron one compiled gradient call, then a per-pixel Python loop that averages,
   scales and clips. The loop runs on ``--seeds-baseline`` seeds and is scaled linearly to
   1,000 (it is linear in the seeds); both numbers are printed.
3. Synthesis against its limit: seed-steps per second of ``synthesize`` (the public call, with
   its checks) over those of one jitted batched forward + backward pass of the model on the
   same seeds, medians of interleaved runs; for one step (DeepFault's setting, which also
   reads the targets and logits on the results: one more forward pass) and ``--steps`` steps.

Times exclude compilation (each fast path is run once first) and include moving results to
the host. The model is an untrained-weights-agnostic benchmark subject: it is trained for one
epoch on 5,000 images (cached), so the spectrum has failing inputs.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from workbench import activations, data, passes, suspiciousness, synthesis, train

# Full-precision matmuls and convolutions, so the fast and the loop results can be compared to
# 1e-5 on a GPU too (its default is TF32).
jax.config.update("jax_default_matmul_precision", "highest")


def loop_spectrum(model, images, labels, container=set):
    """The released code's counting loops (per layer, per input, per neuron)."""
    outs = {name: [] for name in activations.neuron_counts(model, (28, 28, 1))}
    for start in range(0, len(images), 1000):  # batched forward, as Keras' predict
        acts = activations.activations(model, jnp.asarray(images[start:start + 1000]))
        for name, chunks in outs.items():
            chunks.append(np.asarray(acts[name]))
    predictions = train.predict(model, images)
    correct = container(np.flatnonzero(predictions == labels).tolist())
    result = {}
    for name, chunks in outs.items():
        layer = np.concatenate(chunks)
        n = layer.shape[1]
        num_cf, num_uf, num_cs, num_us = (np.zeros(n) for _ in range(4))
        for test_idx, l in enumerate(layer):
            covered = list(np.where(l > 0)[0])
            uncovered = list(np.where(l <= 0)[0])
            if test_idx in correct:
                for i in covered:
                    num_cs[i] += 1
                for i in uncovered:
                    num_us[i] += 1
            else:
                for i in covered:
                    num_cf[i] += 1
                for i in uncovered:
                    num_uf[i] += 1
        result[name] = (num_cs, num_cf, num_us, num_uf)
    return result


def loop_synthesis(model, seeds, flat_targets, step, d):
    """The released input_synthesis.py structure: per seed, per neuron gradient; per pixel."""
    def neuron(x, j):
        return activations.flatten(activations.trace(model, x[None], convention="pre").acts)[0, j]

    gradient = jax.jit(jax.grad(neuron), static_argnums=1)
    out = []
    for x in seeds:
        all_grads = [np.asarray(gradient(jnp.asarray(x), int(j))) for j in flat_targets]
        perturbed = []
        for i in range(x.shape[0]):
            for k in range(x.shape[1]):
                sum_grad = 0.0
                for g in all_grads:
                    sum_grad += g[i][k][0]
                avg = sum_grad / len(flat_targets) * step
                avg = min(max(avg, -d), d)
                perturbed.append(max(min(x[i][k][0] + avg, 1.0), 0.0))
        out.append(perturbed)
    return np.asarray(out, np.float32).reshape(seeds.shape)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args, **kwargs))
    return result, time.perf_counter() - start


def limit_step(model, seeds):
    """One batched forward and backward pass of ``model`` (the input gradient of its logits'
    sum) over all ``seeds``, jitted and compiled: what one synthesis step costs at least."""
    graphdef, state = activations.split(model)
    grad = jax.jit(jax.grad(lambda x, s: activations.forward(graphdef, s, x).sum()))
    x = jnp.asarray(seeds)
    grad(x, state).block_until_ready()
    return lambda: grad(x, state)


def limit_per_second(model, seeds, repeats=5):
    """Seed-steps per second of :func:`limit_step` (the best of ``repeats``)."""
    step = limit_step(model, seeds)
    return len(seeds) / min(timed(step)[1] for _ in range(repeats))


def against_limit(model, seeds, targets, n_steps=1, rounds=9):
    """Median seconds of ``synthesis.synthesize`` (step 1, d=0.1) and of the limit, timed in
    turn ``rounds`` times on the same device array of seeds (a shared machine is noisy)."""
    x = jnp.asarray(seeds)
    limit = limit_step(model, seeds)

    def run():
        return synthesis.synthesize(model, x, targets, step_size=1.0, d=0.1, n_steps=n_steps)

    run()  # compile
    times = np.array([(timed(run)[1], timed(limit)[1]) for _ in range(rounds)])
    return float(np.median(times[:, 0])), float(np.median(times[:, 1]))


def _seeds_and_targets(model, images, labels, spectrum, args):
    """``args.seeds`` correctly classified training images and the ``args.k`` neurons of
    highest D* suspiciousness."""
    correct = np.flatnonzero(train.predict(model, images) == labels)
    seeds = images[np.random.default_rng(0).choice(correct, args.seeds, replace=False)]
    return seeds, suspiciousness.top_k(suspiciousness.dstar(spectrum), args.k)


def _print_against_limit(model, seeds, targets, args):
    for n_steps in sorted({1, args.steps}):
        run_s, limit_s = against_limit(model, seeds, targets, n_steps)
        rate = len(seeds) * n_steps / run_s
        print(f"synthesis, {len(seeds)} seeds, k={args.k}, {n_steps} step(s): {rate:,.0f} "
              f"seed-steps/s, limit {len(seeds) / limit_s:,.0f} (a batched forward + backward "
              f"of the model over the same seeds): {rate * limit_s / len(seeds):.2f} of the "
              f"limit; {len(seeds) / run_s:,.0f} synthesized inputs/s (medians of 9 "
              f"interleaved runs)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--seeds-baseline", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10,
                        help="also measure the iterative variant with this many steps")
    parser.add_argument("--limit-only", action="store_true",
                        help="only the synthesis against its limit (no loops)")
    parser.add_argument("--faithful", type=int, default=10000,
                        help="images for the loop with the released code's list membership")
    args = parser.parse_args()

    model = train.load_or_train("deepfault_5x30_leaky", epochs=1, limit=5000).model
    train_split = data.load("mnist", "train")
    images, labels = train_split.images, train_split.labels
    print(f"backend: {jax.default_backend()}, devices: {jax.device_count()}")

    passes.model_spectrum(model, images[:1000], labels[:1000])  # compile
    fast, fast_s = timed(passes.model_spectrum, model, images, labels)
    if args.limit_only:
        _print_against_limit(model, *_seeds_and_targets(model, images, labels, fast, args), args)
        return
    slow, slow_s = timed(loop_spectrum, model, images, labels)
    for name, (cs, cf, us, uf) in slow.items():
        assert np.array_equal(np.asarray(fast.a_s[name]), cs)
        assert np.array_equal(np.asarray(fast.a_f[name]), cf)
        assert np.array_equal(np.asarray(fast.n_s[name]), us)
        assert np.array_equal(np.asarray(fast.n_f[name]), uf)
    print(f"spectrum, {len(images)} images, {sum(len(v[0]) for v in slow.values())} neurons: "
          f"vectorised {fast_s:.3f} s, loop {slow_s:.2f} s, ratio {slow_s / fast_s:.0f}x")

    n = args.faithful
    _, small_s = timed(passes.model_spectrum, model, images[:n], labels[:n])
    _, list_s = timed(loop_spectrum, model, images[:n], labels[:n], list)
    print(f"spectrum, {n} images, released code's list membership (quadratic in inputs): "
          f"vectorised {small_s:.3f} s, loop {list_s:.2f} s, ratio {list_s / small_s:.0f}x")

    seeds, targets = _seeds_and_targets(model, images, labels, fast, args)
    flat = np.asarray(synthesis.target_indices(model, seeds.shape[1:], targets))
    synthesis.synthesize(model, seeds, targets, step_size=1.0, d=0.1)  # compile
    out, fast_s = timed(synthesis.synthesize, model, seeds, targets, step_size=1.0, d=0.1)
    _print_against_limit(model, seeds, targets, args)
    n = args.seeds_baseline
    reference, loop_s = timed(loop_synthesis, model, seeds[:n], flat, 1.0, 0.1)
    np.testing.assert_allclose(np.asarray(out.inputs[:n]), reference, atol=1e-5)
    scaled = loop_s * args.seeds / n
    print(f"synthesis, {args.seeds} seeds, k={args.k}: vectorised {fast_s:.3f} s, loop "
          f"{loop_s:.2f} s on {n} seeds -> {scaled:.1f} s for {args.seeds}, "
          f"ratio {scaled / fast_s:.0f}x")


if __name__ == "__main__":
    main()
