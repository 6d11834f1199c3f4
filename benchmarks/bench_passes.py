"""Model-level passes against the plain forward pass on the same inputs (issue 19: goal 1.2x).

Run: ``WORKBENCH_DATA=... python benchmarks/bench_passes.py [--models lenet5,deepfault_8x20_leaky]
[--repeats 3] [--batch-size 1000]``.

For each model (fresh weights, ``models.create(name, seed=0)``: the cost does not depend on the
weights), on MNIST:

- ``model_coverage``: NC, KMNC (k=10), NBC, SNAC and TKNC (k=2) in one pass over the 10,000 test
  images, against a forward pass over them;
- ``model_profile``: the profile of the 60,000 training images, against a forward pass over them;
- ``model_spectrum(by_class=True)``: DeepFault's spectrum per class over the 10,000 test images;
- ``model_trace``: every neuron and the logits of the 10,000 test images in host memory
  (surprise adequacy's traces).

The forward pass is the same model's ``activations.forward``, jitted, over the same fixed-size
batches of :func:`workbench.streaming.batches` (sharded the same way), logits brought to the
host. Times are the best of ``--repeats`` after one warm-up (compilation) run.
"""

import argparse
import os
import time

import jax
import numpy as np

from workbench import activations, data, models, passes, streaming


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def forward_pass(model, images, batch_size):
    graphdef, state = activations.split(model)
    forward = jax.jit(lambda state, x: activations.forward(graphdef, state, x))

    def run():
        return [np.asarray(forward(state, batch))
                for _, batch in streaming.batches((images,), batch_size)]

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,deepfault_8x20_leaky")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"JAX {jax.__version__} on {jax.device_count()} x {jax.devices()[0].platform}, "
          f"{os.cpu_count()} cores")
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    size = args.batch_size
    for name in args.models.split(","):
        report(name, train, test, size, args.repeats)


def report(name, train, test, size, repeats):
    """Times every pass of one zoo model and prints the ratios to its forward pass."""
    model = models.create(name, seed=0)
    model.eval()
    prof = passes.model_profile(model, train.images[:size])
    rows = []
    t_test = best(forward_pass(model, test.images, size), repeats)
    t_train = best(forward_pass(model, train.images, size), repeats)
    rows.append(("coverage, 5 criteria (10k)", t_test, best(
        lambda: passes.model_coverage(model, test.images, profile=prof, batch_size=size),
        repeats)))
    rows.append(("profile (60k)", t_train, best(
        lambda: passes.model_profile(model, train.images, batch_size=size), repeats)))
    rows.append(("spectrum by class (10k)", t_test, best(
        lambda: passes.model_spectrum(model, test.images, test.labels, by_class=True,
                                      batch_size=size), repeats)))
    rows.append(("traces, all sites (10k)", t_test, best(
        lambda: passes.model_trace(model, test.images, batch_size=size).logits,
        repeats)))
    print(f"\n{name}, batch {size} (seconds; ratio = pass / forward on the same inputs)")
    print(f"   {'pass':28s} {'forward':>8s} {'pass':>8s} {'ratio':>6s}")
    for label, forward, spent in rows:
        print(f"   {label:28s} {forward:8.3f} {spent:8.3f} {spent / forward:6.2f}")


if __name__ == "__main__":
    main()
