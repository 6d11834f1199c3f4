"""DeepXplore: difference-inducing inputs per second, batched generator vs the released loop.

``workbench.differential.generate`` (one jitted loop, ``batch_size`` seeds advancing together,
coverage updated on device) against a loop with the released code's structure
(``MNIST/gen_diff.py``): one seed at a time; per step a jitted gradient of the same joint
objective on one image, the constraint in NumPy, a separate prediction call per model, and on
disagreement each model's coverage updated per neuron in NumPy (``utils.update_coverage``) and
the next neuron drawn from a Python list of uncovered ones (``utils.neuron_to_cover``).
Both run the released code's algorithm (``differential.VARIANTS["code"]``: target 0, logits,
one neuron per seed, stop at any disagreement, occlusion at (0, 0)) with the MNIST defaults
(lambda1 1, lambda2 0.1, s 10, t 0, 50 steps), once clipped to [0, 1] (our default; the loop
clips every step, the generator the seed plus all steps) and once unclipped (the released
code's behaviour).

Besides the rates, it prints the cost of one seed-step (one gradient step of one seed through
the three models) on each side: on a CPU that cost bounds the ratio, because both sides do the
same arithmetic per seed-step and the batched side can only save the loop's per-call overhead.

``--paper N`` instead runs the paper's algorithm (``VARIANTS["paper"]``, lighting, clipped,
the MNIST settings) on the first ``N`` test images and prints its seed-steps per second as a
fraction of the limit, and the inputs found per second.

The LeNets are trained for 1 epoch on the first 5,000 training images (cached); the ratios,
not the models' quality, are the point. Run: ``python benchmarks/bench_deepxplore.py
[--paper 300]``.
"""

import random
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from workbench import activations, constraints, data, differential, train

N_SEEDS = 1000  # seeds for the batched generator
N_LOOP = 60  # seeds for the per-seed loop (it is slow)
SETTINGS = {"weight_diff": 1.0, "weight_nc": 0.1, "step": 10.0, "iterations": 50,
            "threshold": 0.0}


def _np_constraint(name, g, rng):
    """The released code's constraints, in NumPy (utils.py)."""
    if name == "light":
        return np.full_like(g, g.mean())
    if name == "occlusion":
        out = np.zeros_like(g)
        out[:, :10, :10] = g[:, :10, :10]
        return out
    r, c = rng.randint(0, g.shape[1] - 6), rng.randint(0, g.shape[2] - 6)
    out = np.zeros_like(g)
    if g[:, r:r + 6, c:c + 6].mean() < 0:
        out[:, r:r + 6, c:c + 6] = -1.0
    return out


def per_seed_loop(nets, seeds, name, clip, seed=0):
    """One seed at a time, coverage as a dict of (layer, index) -> bool per model."""
    rng = random.Random(seed)
    parts = [activations.split(net) for net in nets]
    counts = [activations.neuron_counts(n, seeds.shape[1:], convention="deepxplore") for n in nets]
    tables = [{(site, i): False for site, c in cnt.items() for i in range(c)} for cnt in counts]
    keys = [list(t) for t in tables]
    predict = [jax.jit(lambda s, x, g=g: jnp.argmax(activations.neurons(g, s, x).logits, -1))
               for g, _ in parts]
    states = [s for _, s in parts]
    raw = activations.CONVENTIONS["deepxplore_raw"]
    weights = [-SETTINGS["weight_diff"] if k == 0 else 1.0 for k in range(len(nets))]

    def objective(x, label, neurons):
        """The joint objective of gen_diff.py on one image (target model 0)."""
        total = 0.0
        for k, (g, s) in enumerate(parts):
            t = activations.neurons(g, s, x, raw)
            flat = activations.flatten(t.acts)
            total = total + weights[k] * t.logits[0, label[0]] \
                + SETTINGS["weight_nc"] * flat[0, neurons[k, 0]]
        return total

    grad = jax.jit(jax.grad(objective))

    def update_coverage(x):
        for net, table in zip(nets, tables):
            acts = activations.trace(net, x, convention="deepxplore").acts
            for site, values in acts.items():
                values = np.asarray(values[0])
                for i in range(len(values)):
                    if values[i] > SETTINGS["threshold"] and not table[(site, i)]:
                        table[(site, i)] = True

    def neuron_to_cover(table, names):
        uncovered = [k for k, v in table.items() if not v]
        site, i = rng.choice(uncovered) if uncovered else rng.choice(list(table))
        return names.index((site, i))

    found = steps = 0
    for image in seeds:
        x = image[None].copy()
        labels = [int(p(s, x)[0]) for p, s in zip(predict, states)]
        if len(set(labels)) > 1:
            update_coverage(x)
            continue
        neurons = jnp.array([[neuron_to_cover(t, k)] for t, k in zip(tables, keys)])
        label = jnp.array([labels[0]])
        for _ in range(SETTINGS["iterations"]):
            steps += 1
            g = np.asarray(grad(jnp.asarray(x), label, neurons))
            g = g / (np.sqrt(np.mean(g ** 2)) + 1e-5)
            x = (x + SETTINGS["step"] * _np_constraint(name, g, rng)).astype(np.float32)
            if clip:
                x = np.clip(x, 0, 1)
            preds = [int(p(s, x)[0]) for p, s in zip(predict, states)]
            if len(set(preds)) > 1:
                update_coverage(x)
                found += 1
                break
    covered = [sum(t.values()) / len(t) for t in tables]
    return found, float(np.mean(covered)), steps


def seed_steps(r):
    """Gradient steps the batched generator took: each found input's iterations, and the full
    budget for every climbed seed that found nothing."""
    climbed_found = r.iterations[r.iterations > 0]
    failed = r.seeds_climbed - len(climbed_found)
    return int(climbed_found.sum()) + failed * SETTINGS["iterations"]


def limit_per_second(nets, seeds, batch_size=256, repeats=5):
    """The limit on seed-steps per second: one batched forward and backward pass (the input
    gradient of the sum of the three models' logits) over ``batch_size`` seeds, jitted, timed
    alone; every generator step does at least this."""
    parts = [activations.split(net) for net in nets]
    graphdefs, states = tuple(p[0] for p in parts), tuple(p[1] for p in parts)

    @jax.jit
    def grad(states, x):
        return jax.grad(lambda x: sum(activations.forward(g, s, x)[:, 0].sum()
                                      for g, s in zip(graphdefs, states)))(x)

    x = jnp.asarray(seeds[:batch_size])
    grad(states, x).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        grad(states, x).block_until_ready()
        times.append(time.perf_counter() - start)
    return batch_size / min(times)


def against_limit(nets, seeds, batch_size=256, rounds=3):
    """The paper's algorithm (``VARIANTS["paper"]``, lighting, clipped, the MNIST settings) on
    ``seeds``: seconds of the first call (with compilation), median seconds of ``rounds``
    timed calls, each followed by a limit measurement, and the last result."""
    run = {"transformation": "light", "key": jax.random.key(0), "batch_size": batch_size,
           **differential.VARIANTS["paper"], **SETTINGS}
    start = time.perf_counter()
    differential.generate(nets, seeds, **run)
    first = time.perf_counter() - start
    times, limits = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        r = differential.generate(nets, seeds, **run)
        times.append(time.perf_counter() - start)
        limits.append(limit_per_second(nets, seeds, batch_size, repeats=3))
    return first, float(np.median(times)), float(np.median(limits)), r


def print_against_limit(nets, seeds):
    first, seconds, limit, r = against_limit(nets, seeds)
    rate = seed_steps(r) / seconds
    found = int((r.iterations > 0).sum())
    print(f"paper's algorithm, lighting, {len(seeds)} seeds ({r.seeds_climbed} climbed), "
          f"batch 256, lambda1 1, lambda2 0.1, s 10, t 0, {SETTINGS['iterations']} iterations: "
          f"{rate:,.0f} seed-steps/s, limit {limit:,.0f}: {rate / limit:.2f} of the limit; "
          f"{found} inputs found by climbing, {found / seconds:.1f} inputs found/s "
          f"({seconds:.1f} s a run, medians of 3; first call with compilation {first:.0f} s)")


def main():
    print(f"JAX {jax.__version__} on {jax.default_backend()}, {jax.device_count()} device(s)")
    nets = [train.load_or_train(n, epochs=1, limit=5000).model
            for n in ("lenet1", "lenet4", "lenet5")]
    print("models: LeNet-1/4/5, epochs=1, limit=5000 training images (cached)")
    test = data.load("mnist", "test")
    if len(sys.argv) > 2 and sys.argv[1] == "--paper":
        print_against_limit(nets, test.images[:int(sys.argv[2])])
        return
    seeds = test.images[:N_SEEDS]
    limit = limit_per_second(nets, seeds)
    print(f"limit: {limit:,.0f} seed-steps/s (a batched forward + backward of the three models, "
          f"256 seeds)")
    print(f"{'transformation':<11}{'clip':>5}{'batched /s':>11}{'loop /s':>9}{'ratio':>7}"
          f"{'found':>7}{'NC':>7}{'NC/s':>7}{'loop NC':>8}{'us/step':>9}{'loop us/step':>13}"
          f"{'of limit':>9}")
    for clip in (True, False):
        for name in ("light", "occlusion", "blackout"):
            # The released code's algorithm on both sides (target 0, logits, one neuron per
            # seed, any disagreement stops, occlusion at (0, 0)); only the loop differs.
            shape = constraints.occlusion(start=(0, 0)) if name == "occlusion" else name
            run = {"transformation": shape, "key": jax.random.key(0), "batch_size": 256,
                   "clip": clip, **differential.VARIANTS["code"], **SETTINGS}
            differential.generate(nets, seeds, **run)  # compile (the shapes of the timed call)
            start = time.perf_counter()
            r = differential.generate(nets, seeds, **run)
            seconds = time.perf_counter() - start
            found = int((r.iterations > 0).sum())
            per_second = found / seconds
            coverage = float(np.mean(r.coverage_after))
            start = time.perf_counter()
            loop_found, loop_coverage, loop_steps = per_seed_loop(nets, seeds[:N_LOOP], name,
                                                                  clip)
            loop_seconds = time.perf_counter() - start
            loop_rate = loop_found / loop_seconds
            ratio = per_second / loop_rate if loop_rate else float("inf")
            print(f"{name:<11}{'yes' if clip else 'no':>5}{per_second:>11.1f}{loop_rate:>9.2f}"
                  f"{ratio:>7.1f}{found:>7}{coverage:>7.3f}{coverage / seconds:>7.3f}"
                  f"{loop_coverage:>8.3f}{seconds / seed_steps(r) * 1e6:>9.0f}"
                  f"{loop_seconds / max(loop_steps, 1) * 1e6:>13.0f}"
                  f"{seed_steps(r) / seconds / limit:>9.2f}")
    print(f"batched: {N_SEEDS} seeds, batch_size 256; loop: first {N_LOOP} seeds. Rates count "
          "inputs found by gradient ascent (seeds the models already disagree on excluded); "
          "NC = mean DeepXplore neuron coverage of the trio, NC/s = reached per second; "
          "us/step = wall time per seed-step (loop: including its prediction and coverage calls); "
          "of limit = the generator's seed-steps per second over the limit's.")


if __name__ == "__main__":
    main()
