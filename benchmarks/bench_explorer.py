"""The explorer's latency: how long a control change takes, first and later, against the set-up.

Run: ``WORKBENCH_DATA=... python benchmarks/bench_explorer.py [--n-test 10000] [--repeats 5]``.

Subject: LeNet-5 trained for one epoch on the first 10,000 MNIST training images (cached under
``$WORKBENCH_CACHE``), all 10,000 MNIST test images, the profile over the same training images.

1. Set-up (once per model): loading or training the model, tracing the test set, profiling the
   training set, first draw.
2. First use of each control, without the background warm-up (what a user waits for the first
   time, each may compile): a new measure, threshold, class, a click on a cell, "select the
   highest", synthesis, the per-position conv neurons (a new set-up).
3. Warm-up (once per model, in the background in a notebook): compiling every measure.
4. Each control change after that, driven from Python exactly as a click would (setting
   ``.value``, :meth:`Explorer.select`), the median of ``--repeats`` changes.
"""

import argparse
import statistics
import time

from workbench import widgets
from workbench.experiments import explorer as explorer_data


def seconds(change) -> float:
    start = time.perf_counter()
    change()
    return time.perf_counter() - start


def median(change, repeats: int) -> float:
    return statistics.median(seconds(lambda i=i: change(i)) for i in range(1, repeats + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    explorer = None

    def setup():
        nonlocal explorer
        explorer = widgets.Explorer("lenet5", model_names=["lenet5"], epochs=1,
                                    n_train=args.n_train, n_test=args.n_test)

    print(f"LeNet-5, {args.n_test} test inputs, profile over {args.n_train} training inputs")
    print(f"set-up (load or train, trace, profile, first draw):   {seconds(setup):7.2f} s")
    first = {
        "measure (ochiai)": lambda: setattr(explorer.measure, "value", "ochiai"),
        "threshold": lambda: setattr(explorer.threshold, "value", 0.1),
        "class": lambda: setattr(explorer.label, "value", 3),
        "click a cell": lambda: explorer.select("fc1", 7),
        "select the highest": explorer.select_highest,
        "synthesise": explorer.synthesize,
        "synthesise again": explorer.synthesize,
    }
    for name, change in first.items():
        print(f"first use: {name:<20}                       {seconds(change):7.2f} s")
    warm = seconds(lambda: explorer.warm(background=False))
    print(f"warm-up (compile all {len(explorer_data.measure_names())} measures):                "
          f"{warm:7.2f} s")

    measures = ["nc", "kmnc", "ochiai", "tarantula", "tknc", "mean"]
    thresholds = [0.05 * i for i in range(1, 2 * args.repeats + 3)]
    later = {
        "measure": lambda i: setattr(explorer.measure, "value", measures[i % len(measures)]),
        "threshold": lambda i: setattr(explorer.threshold, "value", thresholds[i]),
        "class": lambda i: setattr(explorer.label, "value", i % 10),
        "click a cell": lambda i: explorer.select("fc2", (7 * i) % 84),
    }
    explorer.measure.value = "ochiai"
    for name, change in later.items():
        print(f"later: {name:<13} median of {args.repeats}:                  "
              f"{median(change, args.repeats):7.3f} s")
    print(f"first use: per-position conv neurons (a new set-up):  "
          f"{seconds(lambda: setattr(explorer.reduce, 'value', 'none')):7.2f} s")


if __name__ == "__main__":
    main()
