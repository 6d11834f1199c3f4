"""Coverage engine: one jitted pass for every criterion, against a plain forward pass and
against DeepXplore's per-input loop; DSA / LSA over the full MNIST training set.

Run: ``WORKBENCH_DATA=... python benchmarks/bench_coverage.py [--loop-inputs 500] [--no-lsa]``.

Subject: LeNet-5 trained for one epoch on the first 10,000 MNIST training images
(``train.load_or_train("lenet5", epochs=1, limit=10000)``, cached under ``$WORKBENCH_CACHE``),
the 10,000 MNIST test images, batches of 1,000.

1. ``passes.model_coverage`` with NC, KMNC (k=10), NBC, SNAC and TKNC (k=2) from one
   streamed pass (profile from the 60,000 training images, computed once beforehand and
   timed separately), against (a) a plain jitted forward pass of the same model over the same
   batches (goal: at most 1.5x its time). TKNP (distinct top-k patterns) is streamed the
   same way and timed on its own.
2. NC under the ``deepxplore`` convention against (b) the released DeepXplore ``update_coverage``
   structure: one forward pass per input, then per layer NumPy min-max scaling and a Python
   loop over the channels (goal: at least 300x faster). The loop runs on ``--loop-inputs``
   inputs and is scaled linearly to 10,000 (it is linear in the inputs); both are printed,
   and the two coverage tables are checked to agree on those inputs.
3. DSA (and LSA) of the 10,000 test traces against the 60,000 training traces of the last
   hidden layer (``fc2``, 84 neurons), test classes the model's predictions.

Times exclude compilation (each fast path runs once first), include moving inputs to the
device and results to the host, and are the median of ``--repeats`` runs.
"""

import argparse
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from workbench import activations, coverage, data, passes, profiles, streaming, surprise, train

WHOLE_LAYERS = activations.Convention("deepxplore", "none", None)  # unscaled, per position


def timed(fn, repeats):
    fn()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_pass(model, images, batch_size=1000):
    """A plain jitted forward pass over fixed-size batches, logits brought to the host."""
    graphdef, state = activations.split(model)
    sharding = streaming.batch_sharding()

    @jax.jit
    def forward(state, x):
        return activations.forward(graphdef, state, x)

    def run():
        out = [np.asarray(forward(state, jax.device_put(images[i:i + batch_size], sharding)))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out)

    return run


def deepxplore_loop(model, images, threshold):
    """DeepXplore's ``update_coverage``, input by input: a forward pass of one input, then for
    each layer ``scale`` (NumPy min-max of the whole output) and a loop over its channels."""
    counts = activations.neuron_counts(model, (28, 28, 1), convention="deepxplore")
    table = {(site, i): False for site, n in counts.items() for i in range(n)}
    for image in images:
        layers = activations.trace(model, jnp.asarray(image[None]), convention=WHOLE_LAYERS).acts
        for site, out in layers.items():
            out = np.asarray(out[0]).reshape(-1, counts[site])
            with np.errstate(invalid="ignore", divide="ignore"):
                scaled = (out - out.min()) / (out.max() - out.min())
            for neuron in range(scaled.shape[-1]):
                if np.mean(scaled[..., neuron]) > threshold and not table[(site, neuron)]:
                    table[(site, neuron)] = True
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop-inputs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.25)
    parser.add_argument("--no-lsa", action="store_true")
    args = parser.parse_args()

    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}")
    trained = train.load_or_train("lenet5", epochs=1, limit=10000)
    model = trained.model
    print(f"LeNet-5, 1 epoch on 10,000 images: test accuracy {trained.test_accuracy:.4f}")
    mnist_train = data.load("mnist", "train")
    mnist_test = data.load("mnist", "test")
    test_x = mnist_test.images

    start = time.perf_counter()
    prof = passes.model_profile(model, mnist_train.images)
    print(f"profile of 60,000 training images (incl. compile): {time.perf_counter() - start:.2f} s")
    dead = profiles.dead_neurons(prof)

    # 1. all criteria in one pass vs a plain forward pass
    options = {"profile": prof, "threshold": args.threshold, "k_sections": 10, "k_top": 2,
               "std_multiple": 0.0}
    result = {}

    def all_criteria():
        result.update(passes.model_coverage(model, test_x, **options))
        jax.block_until_ready(result)

    t_cov = timed(all_criteria, args.repeats)
    t_fwd = timed(forward_pass(model, test_x), args.repeats)
    print("\n1. NC + KMNC + NBC + SNAC + TKNC, one pass over 10,000 test images")
    for criterion in coverage.CRITERIA:
        print(f"   {criterion:5s} {coverage.ratio(result[criterion]):.4f}  without dead neurons "
              f"{coverage.ratio(result[criterion], exclude=dead):.4f}")
    print(f"   dead neurons: {sum(int(d.sum()) for d in dead.values())} of "
          f"{sum(d.size for d in dead.values())}")
    print(f"   coverage pass {t_cov:.3f} s, plain forward pass {t_fwd:.3f} s: "
          f"ratio {t_cov / t_fwd:.2f}x (goal <= 1.5x)")

    patterns = {}

    def tknp():
        patterns["n"] = passes.model_patterns(model, test_x, k=2)

    t_tknp = timed(tknp, args.repeats)
    print(f"   TKNP (k=2), streamed: {patterns['n']} distinct patterns of 10,000 inputs in "
          f"{t_tknp:.3f} s ({t_tknp / t_fwd:.2f}x the forward pass)")

    # 2. DeepXplore NC vs the released per-input loop
    xp = {}

    def deepxplore_nc():
        xp.update(passes.model_coverage(model, test_x, criteria=("nc",),
                                        convention="deepxplore", threshold=args.threshold)["nc"])
        jax.block_until_ready(xp)

    t_xp = timed(deepxplore_nc, args.repeats)
    n_loop = args.loop_inputs
    deepxplore_loop(model, test_x[:2], args.threshold)  # compile the one-input forward pass
    start = time.perf_counter()
    table = deepxplore_loop(model, test_x[:n_loop], args.threshold)
    t_loop = time.perf_counter() - start
    t_loop_full = t_loop * len(test_x) / n_loop
    ours = passes.deepxplore_coverage(model, test_x[:n_loop], threshold=args.threshold)
    agree = all(bool(ours[site][i]) == covered for (site, i), covered in table.items())
    print(f"\n2. DeepXplore NC (threshold {args.threshold}, {len(table)} neurons)")
    print(f"   ours: 10,000 inputs {t_xp:.3f} s, NC {coverage.ratio(xp):.4f}; "
          f"all five criteria {t_cov:.3f} s")
    print(f"   DeepXplore loop: {n_loop} inputs {t_loop:.2f} s -> 10,000 inputs "
          f"~{t_loop_full:.1f} s (linear); same table on the {n_loop} inputs: {agree}")
    print(f"   speed-up: NC {t_loop_full / t_xp:.0f}x, all five criteria "
          f"{t_loop_full / t_cov:.0f}x (goal >= 300x)")

    # 3. DSA / LSA
    start = time.perf_counter()
    train_t = passes.model_trace(model, mnist_train.images, sites=("fc2",)).acts["fc2"]
    test_t = passes.model_trace(model, test_x, sites=("fc2",)).acts["fc2"]
    pred = train.predict(model, test_x)
    print(f"\n3. Surprise adequacy, fc2 traces ({train_t.shape[1]} neurons): traces of 70,000 "
          f"images {time.perf_counter() - start:.2f} s")
    args_sa = (train_t, mnist_train.labels, test_t, pred)
    start = time.perf_counter()
    dsa = np.asarray(surprise.distance_surprise(*args_sa))
    t_dsa_first = time.perf_counter() - start
    start = time.perf_counter()
    dsa = np.asarray(surprise.distance_surprise(*args_sa))
    t_dsa = time.perf_counter() - start
    wrong = pred != mnist_test.labels
    print(f"   DSA 10,000 x 60,000: {t_dsa:.2f} s ({t_dsa_first:.2f} s with compilation); "
          f"mean DSA correct {dsa[~wrong].mean():.3f}, misclassified {dsa[wrong].mean():.3f}")
    sc = surprise.surprise_coverage(dsa, upper=2.0, k=100)
    print(f"   DSC (k=100, [0, 2]): {float(np.mean(np.asarray(sc))):.2f}")
    if not args.no_lsa:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            lsa = np.asarray(surprise.likelihood_surprise(*args_sa))
            t_lsa = time.perf_counter() - start
        notes = "; ".join(str(w.message) for w in caught)
        print(f"   LSA 10,000 x 60,000: {t_lsa:.2f} s with compilation; mean LSA correct "
              f"{lsa[~wrong].mean():.1f}, misclassified {lsa[wrong].mean():.1f}"
              + (f" ({notes})" if notes else ""))


if __name__ == "__main__":
    main()
