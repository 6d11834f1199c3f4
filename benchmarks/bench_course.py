"""The course: wall time of every chapter at its default parameters (the laptop budget is 10
minutes each on a 2-core CPU).

Each chapter of ``notebooks/course/`` is executed with papermill, with its solutions, in a fresh
kernel (imports and JAX compilation included), its figures written to a temporary folder. The
models come from the cache (``$WORKBENCH_CACHE`` or ``data/models``) when they are there; a
first run also trains them (LeNet-1/4/5, 2 epochs on 20,000 images: about a minute each on 2
cores), which the ``cached`` column shows. Run: ``python benchmarks/bench_course.py [CHAPTER ...]``.
"""

import sys
import tempfile
import time
from pathlib import Path

import papermill

from workbench import course, train
from workbench.experiments import common

BUDGET_S = 600
MODELS = {"04_deepxplore": ("lenet1", "lenet4", "lenet5")}


def main(names: list[str]) -> None:
    chapters = [p for p in course.chapters() if not names or p.stem in names]
    print(f"{'chapter':<16}{'seconds':>9}  models cached  within 10 min")
    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for path in chapters:
            cached = all(train.cache_path(name, "mnist", epochs=2, seed=0, limit=20000,
                                          cache=common.model_cache()).is_file()
                         for name in MODELS.get(path.stem, ("lenet5",)))
            start = time.perf_counter()
            papermill.execute_notebook(str(path), str(Path(folder) / path.name),
                                       parameters={"out_dir": str(Path(folder) / path.stem)},
                                       cwd=str(path.parent), kernel_name="python3",
                                       progress_bar=False)
            seconds = time.perf_counter() - start
            total += seconds
            print(f"{path.stem:<16}{seconds:>9.1f}  {'yes' if cached else 'no':>13}  "
                  f"{'yes' if seconds <= BUDGET_S else 'NO'}", flush=True)
    print(f"{'total':<16}{total:>9.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
