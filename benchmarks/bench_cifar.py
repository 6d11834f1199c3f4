"""Coverage, spectra and DeepXplore's generator on three CIFAR-10 models (issue 19, "Scale").

Run: ``WORKBENCH_DATA=... python benchmarks/bench_cifar.py [--models resnet20,cifar_vgg,
cifar_lenet] [--n 1000] [--seeds 64] [--iterations 10] [--full]``.

The models are trained by ``train.load_or_train(name, epochs=--epochs, limit=--train-limit)``
(default: one epoch on the first 10,000 training images, cached in the model cache after the
first run) or, with ``--weights fresh``, fresh from ``models.create(name, seed=0)``: the passes'
cost does not depend on the weights, but fresh models agree on no input, so the generator then
has no seed to climb. On the first ``--n`` real CIFAR-10 test images, per model:

- ``forward``: ``activations.forward``, jitted, over the same fixed-size batches as the passes
  (:func:`workbench.streaming.batches`), logits brought to the host: the baseline;
- ``coverage``: ``passes.model_coverage`` with all five criteria (NC, KMNC k=10, NBC, SNAC, TKNC
  k=2), the profile taken from the first ``--profile-n`` training images;
- ``spectrum``: ``passes.model_spectrum(by_class=True)``, DeepFault's spectrum per class.

Then ``differential.generate`` on the three models jointly, from the first ``--seeds`` test
images on which all three agree (among the first ``--n``), ``--iterations`` steps at most per
seed, lighting, batch ``min(64, seeds)``. Printed: seconds (median of ``--repeats`` runs after
one warm-up, each pass's runs interleaved with the forward pass's), images/s, the ratio to the
forward pass over the same inputs, and peak memory: on a GPU the device's
``memory_stats()["peak_bytes_in_use"]`` (the process's peak so far: it never goes down), on the
CPU the growth of the process's anonymous resident memory (``RssAnon``, sampled every 5 ms, as
``bench_memory.py`` measures it) during the pass over what it was before. For the generator,
seed-steps/s counts the gradient steps the climbed seeds took (a seed that found nothing took
all ``--iterations``), and its ratio is the seconds of one seed-step over one image's forward
pass through all three models (a forward and a backward pass each: about 3 at best).
"""

import argparse
import os
import statistics
import threading
import time

import jax
import numpy as np
from bench_passes import forward_pass  # benchmarks/ is on the path when run as a script

from workbench import activations, data, differential, models, passes, train

CRITERIA = ("nc", "kmnc", "nbc", "snac", "tknc")


class PeakMemory:
    """The memory a block of code adds at its peak, in MiB: the device's peak bytes in use
    where the backend reports them, else the growth of ``RssAnon`` sampled every 5 ms."""

    def __init__(self):
        self.device = bool(jax.devices()[0].memory_stats())
        self.mib, self._stop, self._thread = 0.0, threading.Event(), None

    @staticmethod
    def _anon() -> float:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status
                        if line.startswith("RssAnon:"))

    def __enter__(self):
        if not self.device:
            self._base = self._top = self._anon()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self._top = max(self._top, self._anon())

    def __exit__(self, *exc):
        if self.device:
            self.mib = jax.devices()[0].memory_stats()["peak_bytes_in_use"] / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.mib = max(self._top, self._anon()) - self._base


def timed(fn, baseline, repeats: int) -> tuple[float, float, float]:
    """Medians of ``repeats`` interleaved runs of ``baseline`` and ``fn`` (after one warm-up
    run of each: compilation), and ``fn``'s peak memory in a run after its warm-up."""
    jax.block_until_ready(baseline())
    jax.block_until_ready(fn())
    with PeakMemory() as peak:
        jax.block_until_ready(fn())
    base, spent = [], []
    for _ in range(repeats):
        for run, times in ((baseline, base), (fn, spent)):
            start = time.perf_counter()
            jax.block_until_ready(run())
            times.append(time.perf_counter() - start)
    return statistics.median(base), statistics.median(spent), peak.mib


def load(name: str, args):
    if args.weights == "fresh":
        return models.create(name, seed=0), "fresh"
    result = train.load_or_train(name, epochs=args.epochs, limit=args.train_limit)
    return result.model, f"{args.epochs} epoch(s), test accuracy {result.test_accuracy:.3f}"


def report_model(name, model, test, train_images, args):
    size = args.batch_size
    images, labels = test.images[:args.n], test.labels[:args.n]
    profile = passes.model_profile(model, train_images, batch_size=size)
    forward = forward_pass(model, images, size)
    rows = [("coverage, 5 criteria", *timed(
        lambda: passes.model_coverage(model, images, criteria=CRITERIA, profile=profile,
                                      batch_size=size), forward, args.repeats)),
            ("spectrum by class", *timed(
                lambda: passes.model_spectrum(model, images, labels, by_class=True,
                                              batch_size=size), forward, args.repeats))]
    with PeakMemory() as peak:
        forward()
    neurons = sum(activations.neuron_counts(model, images.shape[1:]).values())
    print(f"\n{name}: {neurons} neurons (post), {args.n} test images, batch {size}")
    print(f"   {'pass':22s} {'seconds':>8s} {'images/s':>9s} {'ratio':>6s} {'peak MiB':>9s}")
    base = statistics.median(forward_time for _, forward_time, _, _ in rows)
    print(f"   {'forward':22s} {base:8.3f} {args.n / base:9.0f} {1.0:6.2f} {peak.mib:9.1f}")
    for label, forward_time, spent, mib in rows:
        print(f"   {label:22s} {spent:8.3f} {args.n / spent:9.0f} "
              f"{spent / forward_time:6.2f} {mib:9.1f}")


def report_generator(names, nets, test, args):
    images = test.images[:args.n]
    preds = np.stack([train.predict(net, images, batch_size=args.batch_size) for net in nets])
    agree = np.flatnonzero((preds == preds[:1]).all(axis=0))[:args.seeds]
    print(f"\ndifferential.generate on {', '.join(names)}: {len(agree)} seeds on which all "
          f"agree (of the first {args.n} test images; asked for {args.seeds})")
    if len(agree) == 0:
        print("   nothing to climb: the models agree on no input (fresh weights?)")
        return
    seeds = images[agree]
    forwards = [forward_pass(net, seeds, min(args.batch_size, len(seeds))) for net in nets]

    def all_forward():
        return [run() for run in forwards]

    def generate():
        return differential.generate(nets, seeds, key=jax.random.key(0),
                                     iterations=args.iterations,
                                     batch_size=min(64, len(seeds))).inputs

    forward_time, spent, mib = timed(generate, all_forward, args.repeats)
    result = differential.generate(nets, seeds, key=jax.random.key(0),
                                   iterations=args.iterations, batch_size=min(64, len(seeds)))
    climbed_found = int((result.iterations > 0).sum())
    steps = int(result.iterations.sum()) + (result.seeds_climbed - climbed_found) * args.iterations
    per_step = spent / max(steps, 1) / (forward_time / len(seeds))
    print(f"   {len(result.inputs)} difference-inducing inputs, {steps} seed-steps, coverage "
          f"{np.round(result.coverage_before, 3).tolist()} -> "
          f"{np.round(result.coverage_after, 3).tolist()}")
    print(f"   {'seconds':>8s} {'seeds/s':>8s} {'seed-steps/s':>13s} {'ratio/step':>11s} "
          f"{'peak MiB':>9s}")
    print(f"   {spent:8.3f} {len(seeds) / spent:8.1f} {steps / spent:13.1f} {per_step:11.2f} "
          f"{mib:9.1f}   (forward of the three over the seeds: {forward_time:.3f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,cifar_vgg,cifar_lenet")
    parser.add_argument("--n", type=int, default=1000, help="test images per pass")
    parser.add_argument("--profile-n", type=int, default=5000,
                        help="training images for the coverage profile")
    parser.add_argument("--seeds", type=int, default=64, help="generator seeds (at most)")
    parser.add_argument("--iterations", type=int, default=10, help="generator steps per seed")
    parser.add_argument("--weights", choices=("trained", "fresh"), default="trained")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (trained)")
    parser.add_argument("--train-limit", type=int, default=10000,
                        help="training images (trained; 0: all 50,000)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--full", action="store_true",
                        help="the whole test set, a 50,000-image profile, 1,000 seeds, models "
                             "trained on all 50,000 images")
    args = parser.parse_args()
    if args.full:
        args.n, args.profile_n, args.seeds, args.train_limit = 10000, 50000, 1000, 0
    args.train_limit = args.train_limit or None
    print(f"JAX {jax.__version__} on {jax.device_count()} x {jax.devices()[0].platform}, "
          f"{os.cpu_count()} cores")
    test = data.load("cifar10", "test")
    train_images = data.load("cifar10", "train").images[:args.profile_n]
    names = args.models.split(",")
    nets = []
    for name in names:
        start = time.perf_counter()
        model, weights = load(name, args)
        print(f"{name}: {weights} ({time.perf_counter() - start:.0f} s to load or train)")
        nets.append(model)
    for name, model in zip(names, nets):
        report_model(name, model, test, train_images, args)
    report_generator(names, nets, test, args)


if __name__ == "__main__":
    main()
