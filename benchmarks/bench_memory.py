"""Peak memory of streamed profiles and coverage over 10k, 50k and 100k inputs (issue 19).

Run: ``WORKBENCH_DATA=... python benchmarks/bench_memory.py [--model lenet5] [--sizes
10000,50000,100000]``.

Each size runs in a fresh process (``multiprocessing``, spawn) so that one peak does not hide
another: ``passes.model_profile`` and then ``passes.model_coverage`` (all five criteria, batch
1,000) over ``n`` inputs, the MNIST test set tiled as a read-only memory map of a file, so the
inputs themselves are not in the process's memory: the streamed passes copy one batch at a
time. Printed per size: the inputs' bytes, the process's peak resident memory minus its
anonymous resident memory before the passes (``RssAnon``, sampled every 5 ms; Linux), the
seconds,
and, on a GPU, the device's peak bytes in use (``memory_stats()``, where the backend has it).
Constant memory means the growth does not grow with ``n``.
"""

import argparse
import multiprocessing
import os
import tempfile
import threading
import time

import numpy as np


def _anon_mb() -> float:
    """The process's anonymous resident memory (``RssAnon``): its own allocations, without
    the pages of the memory-mapped inputs, which the kernel can drop at any time."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Peak:
    """Samples :func:`_anon_mb` every 5 ms in a thread; ``peak`` is the largest sample."""

    def __init__(self):
        self.peak, self._stop = _anon_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _anon_mb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _anon_mb())


def _run(args):
    model_name, n, path, shape = args
    import jax

    from workbench import models, passes

    images = np.memmap(path, np.float32, "r", shape=(n, *shape))
    model = models.create(model_name, seed=0)
    model.eval()
    passes.model_coverage(model, images[:1000], profile=passes.model_profile(model, images[:1000]))
    before = _anon_mb()
    start = time.perf_counter()
    with _Peak() as peak:
        prof = passes.model_profile(model, images)
        jax.block_until_ready(passes.model_coverage(model, images, profile=prof))
    seconds = time.perf_counter() - start
    peak = peak.peak
    stats = jax.devices()[0].memory_stats() or {}
    device = stats.get("peak_bytes_in_use")
    return n, peak - before, seconds, None if device is None else device / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--sizes", default="10000,50000,100000")
    args = parser.parse_args()
    from workbench import data

    test = data.load("mnist", "test").images
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "inputs.f32")
        tiled = np.memmap(path, np.float32, "w+", shape=(max(sizes), *test.shape[1:]))
        for start in range(0, max(sizes), len(test)):
            stop = min(start + len(test), max(sizes))
            tiled[start:stop] = test[: stop - start]
        tiled.flush()
        del tiled
        context = multiprocessing.get_context("spawn")
        print(f"{args.model}: profile + coverage (5 criteria), streamed in batches of 1,000")
        print(f"   {'inputs':>8s} {'input MB':>9s} {'peak growth MB':>15s} {'seconds':>8s} "
              f"{'device peak MB':>15s}")
        for n in sizes:
            with context.Pool(1) as pool:
                n, grown, seconds, device = pool.map(
                    _run, [(args.model, n, path, test.shape[1:])])[0]
            device = "n/a" if device is None else f"{device:.0f}"
            print(f"   {n:8,d} {n * test[0].nbytes / 2**20:9.0f} {grown:15.0f} {seconds:8.2f} "
                  f"{device:>15s}")


if __name__ == "__main__":
    main()
