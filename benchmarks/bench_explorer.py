"""The explorer's latency: how long a control change takes, against the one-off set-up.

Run: ``WORKBENCH_DATA=... python benchmarks/bench_explorer.py [--n-test 10000] [--repeats 5]``.

Subject: LeNet-5 trained for one epoch on the first 10,000 MNIST training images (cached under
``$WORKBENCH_CACHE``), all 10,000 MNIST test images, the profile over the same training images.

1. Set-up (once per model): loading or training the model, tracing the test set, profiling the
   training set, first draw.
2. Warm-up (once per model, in the background in a notebook): compiling every measure.
3. Each control change, driven from Python exactly as a click would (setting ``.value``), the
   median of ``--repeats`` changes (first change of each kind after warm-up excluded): a new
   measure, a new threshold, a new class, a new neuron, and the cold first choice of a measure
   without warm-up. The goal is under a second for every warm change.
"""

import argparse
import statistics
import time

from workbench import widgets
from workbench.experiments import explorer as explorer_data


def timed(change, repeats: int) -> float:
    change(0)  # the first of each kind may compile
    times = []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        change(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    explorer = widgets.Explorer("lenet5", model_names=["lenet5"], epochs=1,
                                n_train=args.n_train, n_test=args.n_test)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    explorer.measure.value = "dstar"
    cold = time.perf_counter() - start
    start = time.perf_counter()
    explorer.warm(background=False)
    warm = time.perf_counter() - start

    measures = ["nc", "kmnc", "ochiai", "tarantula", "tknc", "mean"]
    thresholds = [0.05 * i for i in range(1, 2 * args.repeats + 3)]
    rows = {
        "measure": lambda i: setattr(explorer.measure, "value", measures[i % len(measures)]),
        "threshold": lambda i: setattr(explorer.threshold, "value", thresholds[i]),
        "class": lambda i: setattr(explorer.label, "value", i % 10),
        "neuron": lambda i: setattr(explorer.neuron, "value", (7 * i) % 84),
    }
    explorer.measure.value = "ochiai"
    explorer.site.value = "fc2"
    print(f"LeNet-5, {args.n_test} test inputs, profile over {args.n_train} training inputs")
    print(f"set-up (load or train, trace, profile, first draw): {setup:8.2f} s")
    print(f"first choice of a measure, not warmed up:          {cold:8.2f} s")
    print(f"warm-up (compile all {len(explorer_data.measure_names())} measures):             "
          f"{warm:8.2f} s")
    for name, change in rows.items():
        print(f"control change: {name:<10} median of {args.repeats}:           "
              f"{timed(change, args.repeats):8.3f} s")


if __name__ == "__main__":
    main()
