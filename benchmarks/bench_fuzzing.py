"""Fuzzing: mutants evaluated per second, batched fuzzer vs a one-mutant-at-a-time loop.

``workbench.fuzzing.fuzz`` (one jitted step per ``batch_size * mutants_per_seed`` mutants:
selection, mutation, validity, forward pass, oracle, coverage gain, queue update) against:

- a loop with the structure of the reimplementations (NeuraL-Coverage's ``fuzz.py``,
  DeepHunter's ``image_fuzzer.py``, MindArmour's ``Fuzzer``): one mutant at a time, the
  mutation on the host (NumPy / SciPy, as they use NumPy / OpenCV), DeepHunter's validity
  check in NumPy, one jitted forward pass of a single image, the coverage updated per layer
  and neuron in Python (DeepHunter's ``coverage.py``), the oracle, and the queue a Python list;
- the plain jitted forward pass of LeNet-5 on as many images per call (the limit: every
  mutant needs at least this).

LeNet-5 is trained for 1 epoch on the first 5,000 training images (cached); seeds are the first
1,000 test images. NC feedback (threshold 0.75 on per-input min-max scaled values), plus KMNC
and TKNP for the cost of the feedback. Run: ``python benchmarks/bench_fuzzing.py``.
"""

import random
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage as ndi

from workbench import activations, data, fuzzing, mutations, passes, train

N_SEEDS = 1000
BUDGET = 32_768  # mutants per batched run
N_LOOP = 400  # mutants of the one-at-a-time loop (it is slow)
BATCH, PER_SEED = 128, 16  # 2,048 mutants per jitted step


def _np_mutate(image, name, p, rng):
    """One mutation on the host, NumPy / SciPy (the reimplementations' cv2 calls)."""
    if name == "brightness":
        out = image + p[0]
    elif name == "contrast":
        mean = image.mean(axis=(0, 1), keepdims=True)
        out = (image - mean) * p[0] + mean
    elif name == "blur":
        out = ndi.gaussian_filter(image, p[0], mode="constant", truncate=3 / p[0], axes=(0, 1))
    elif name == "noise":
        out = image + p[0] * rng.standard_normal(image.shape)
    else:
        centre = (np.array(image.shape[:2]) - 1) / 2
        angle = np.deg2rad(p[0])
        matrix, shift = {
            "translation": (np.eye(2), np.array(p)),
            "scaling": (np.eye(2) / p[0], np.zeros(2)),
            "shearing": (np.array([[1.0, 0.0], [p[0], 1.0]]), np.zeros(2)),
            "rotation": (np.array([[np.cos(angle), np.sin(angle)],
                                   [-np.sin(angle), np.cos(angle)]]), np.zeros(2)),
        }[name]
        out = ndi.affine_transform(image[..., 0], matrix, offset=centre - matrix @ centre - shift,
                                   order=1, mode="grid-constant")[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def one_at_a_time(model, seeds, labels, n_mutants, seed=0):
    """DeepHunter's loop, one mutant per iteration: select (Equation 3), mutate, check
    validity, run the model on one image, update the coverage neuron by neuron, check the
    oracle, queue the mutant if it covered something new."""
    rng, pick = np.random.default_rng(seed), random.Random(seed)
    graphdef, state = activations.split(model)
    step = jax.jit(lambda s, x: activations.neurons(graphdef, s, x))
    ranges = mutations.ranges_table()
    queue = [{"image": s, "ref": s, "label": int(y), "fuzzed": 0, "affine": False}
             for s, y in zip(seeds, labels)]
    covered = {}
    failures = 0
    for _ in range(n_mutants):
        weights = [1 - e["fuzzed"] / 5 if e["fuzzed"] < 3.5 else 0.3 for e in queue]
        entry = queue[pick.choices(range(len(queue)), weights)[0]]
        entry["fuzzed"] += 1
        names = mutations.PIXEL if entry["affine"] else mutations.MUTATIONS
        name = pick.choice(names)
        low, high = ranges[mutations.MUTATIONS.index(name)].T
        p = rng.uniform(low, high)
        image = _np_mutate(entry["image"], name, p, rng)
        ref = _np_mutate(entry["ref"], name, p, rng) if name in mutations.AFFINE else entry["ref"]
        l0, linf = np.sum(image != ref), np.max(np.abs(image - ref))
        if not (l0 < mutations.ALPHA * image.size or linf < mutations.BETA):
            continue
        trace = step(state, jnp.asarray(image[None]))
        new = False
        for site, values in trace.acts.items():
            values = np.asarray(values[0])
            scaled = (values - values.min()) / max(values.max() - values.min(), 1e-12)
            for i in range(len(scaled)):
                if scaled[i] > 0.75 and not covered.get((site, i), False):
                    covered[site, i] = new = True
        if int(np.argmax(trace.logits[0])) != entry["label"]:
            failures += 1
        elif new:
            queue.append({**entry, "image": image, "ref": ref, "fuzzed": 0,
                          "affine": entry["affine"] or name in mutations.AFFINE})
    return failures


def main():
    print(f"JAX {jax.__version__} on {jax.default_backend()}, {jax.device_count()} device(s)")
    model = train.load_or_train("lenet5", epochs=1, limit=5000).model
    test = data.load("mnist", "test")
    seeds, labels = test.images[:N_SEEDS], test.labels[:N_SEEDS]
    profile = passes.model_profile(model, data.load("mnist", "train").images[:5000])
    per_step = BATCH * PER_SEED
    print(f"LeNet-5 (1 epoch, 5,000 images); {N_SEEDS} seeds; {per_step} mutants per step")

    graphdef, state = activations.split(model)
    forward = jax.jit(lambda s, x: activations.forward(graphdef, s, x))
    x = jnp.asarray(np.resize(test.images, (per_step, 28, 28, 1)))
    forward(state, x).block_until_ready()
    start = time.perf_counter()
    for _ in range(10):
        out = forward(state, x)
    out.block_until_ready()
    limit = 10 * per_step / (time.perf_counter() - start)
    print(f"{'plain forward pass':<34}{limit:>12,.0f} images/s")

    rates = {}
    for feedback in ("nc", "kmnc", "tknp"):
        run = {"key": jax.random.key(0), "feedback": feedback, "budget": BUDGET,
               "batch_size": BATCH, "mutants_per_seed": PER_SEED, "profile": profile}
        fuzzing.fuzz(model, seeds, labels, **run)  # compile
        start = time.perf_counter()
        r = fuzzing.fuzz(model, seeds, labels, **run)
        seconds = time.perf_counter() - start
        rates[feedback] = r.mutants / seconds
        print(f"{'batched fuzz, ' + feedback + ' feedback':<34}{rates[feedback]:>12,.0f} "
              f"mutants/s  ({rates[feedback] / limit:.2f} of the forward pass; "
              f"{r.failures_total} failures, {r.valid / r.mutants:.0%} valid)")

    one_at_a_time(model, seeds, labels, 20)  # compile
    start = time.perf_counter()
    one_at_a_time(model, seeds, labels, N_LOOP)
    loop = N_LOOP / (time.perf_counter() - start)
    print(f"{'one mutant at a time, nc':<34}{loop:>12,.0f} mutants/s  "
          f"(batched nc: {rates['nc'] / loop:,.0f}x)")


if __name__ == "__main__":
    main()
