"""The numbers the README quotes, measured at the current code.

Run: ``python scripts/readme_numbers.py [--recipe] [--skip-released]`` (data from
``$WORKBENCH_DATA``; checkpoints from the model cache, ``train.default_cache()``).

Prints Markdown, headed by the command, the commit, the backend and the date:

1. LeNet-5 as ``make demo`` trains it (the ``quickstart`` section of
   ``notebooks/profiles/quick.yml``: 2 epochs on the first 20,000 training images, seed 0),
   loaded from the same checkpoint when the demo ran: its test accuracy, then the README's
   coverage snippet on the 10,000 test images (NC at threshold 0.25, KMNC k=10, NBC, SNAC,
   TKNC k=2, the training profile from the 60,000 training images), NC without the dead
   neurons, DeepXplore's NC (``convention="deepxplore"``, threshold 0) and TKNP (k=2).
2. The papers' released models: accuracy on the 10,000 test images (``--skip-released``: not).
3. ``--recipe``: LeNet-5 by its full recipe (``train.recipe("lenet5")``: 10 epochs on all
   60,000 images), trained here unless cached: time and accuracy (2-5 minutes on a 2-core CPU).

Takes about a minute on a 2-core CPU once the quick profile's LeNet-5 is cached (the demo trains
it; otherwise add its training, about a minute).
"""

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

import jax
import yaml

from workbench import coverage, data, models, passes, profiles, train
from workbench.experiments import common

REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 0.25  # the README snippet's NC threshold
RELEASED = ("lenet1", "lenet4", "lenet5", "deepfault_3x50_relu", "deepfault_3x50_leaky",
            "deepfault_5x30_relu", "deepfault_5x30_leaky", "deepfault_6x25_leaky",
            "deepfault_8x20_relu", "deepfault_8x20_leaky")


def header(argv: list[str]) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    command = " ".join(["python scripts/readme_numbers.py", *argv])
    today = datetime.date.today().isoformat()
    return (f"`{command}` at commit {commit}, JAX {jax.__version__} on "
            f"{jax.default_backend()}, {today}")


def quick_lenet5(test, train_images) -> list[str]:
    settings = yaml.safe_load((REPO / "notebooks" / "profiles" / "quick.yml").read_text())
    quick = settings["quickstart"]
    name, epochs, n_train = quick["model_name"], quick["epochs"], quick["n_train"]
    seed = quick.get("seed", settings.get("defaults", {}).get("seed", 0))
    start = time.perf_counter()
    result = common.load_model(name, epochs=epochs, n_train=n_train, seed=seed)
    source = "cached" if result.cached else f"trained now in {time.perf_counter() - start:.0f} s"
    model = result.model
    prof = passes.model_profile(model, train_images)
    masks = passes.model_coverage(model, test.images, profile=prof, threshold=THRESHOLD)
    ratios = {criterion: round(coverage.ratio(m), 4) for criterion, m in masks.items()}
    dead = profiles.dead_neurons(prof)
    n_dead = sum(int(d.sum()) for d in dead.values())
    alive = coverage.ratio(masks["nc"], exclude=dead)
    dx = passes.deepxplore_coverage(model, test.images)
    dx_neurons = sum(m.size for m in dx.values())
    tknp = passes.model_patterns(model, test.images, k=2)
    checkpoint = train.cache_path(name, "mnist", epochs=epochs, seed=seed, limit=n_train)
    snippet = "{name: coverage.ratio(m) for name, m in masks.items()}"
    return [
        (f"## {name} of the quick profile ({epochs} epochs on the first {n_train:,} training "
         f"images, seed {seed}; {source}: {checkpoint})"),
        "",
        f"- test accuracy (10,000 images): {result.test_accuracy:.4f}",
        (f"- `{snippet}` (NC threshold {THRESHOLD}, KMNC k=10, TKNC k=2): `{ratios}`"),
        (f"- NC without the {n_dead} dead neurons (never active on the 60,000 training "
         f"images): {alive:.4f}"),
        (f"- DeepXplore NC (`convention=\"deepxplore\"`, threshold 0): "
         f"{coverage.ratio(dx):.4f} of {dx_neurons} neurons"),
        f"- TKNP (k=2): {tknp:,} distinct patterns",
    ]


def released_accuracies(test) -> list[str]:
    lines = ["## The papers' released models (accuracy on the 10,000 test images)", ""]
    for name in RELEASED:
        lines.append(f"- {name}: {train.accuracy(models.released(name), test):.4f}")
    return lines


def recipe_lenet5() -> list[str]:
    plan = train.recipe("lenet5")
    result = train.load_or_train("lenet5", progress=True)
    path = train.cache_path("lenet5", "mnist", epochs=plan.epochs, seed=0)
    backend = train.load(models.create("lenet5"), path)[1].get("backend", "unknown")
    source = "cached" if result.cached else "trained now"
    return [f"## lenet5 by its recipe ({plan.epochs} epochs on 60,000 images, seed 0; {source})",
            "", (f"- training time {result.train_seconds:.0f} s on {backend} (as recorded when "
                 f"trained), test accuracy {result.test_accuracy:.4f}")]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", action="store_true",
                        help="also LeNet-5 by its full recipe (trains for minutes on a CPU)")
    parser.add_argument("--skip-released", action="store_true",
                        help="leave out the released models' accuracies")
    args = parser.parse_args(argv)
    data.ensure(("mnist",) if args.skip_released else ("mnist", "released"))
    test = data.load("mnist", "test")
    train_images = data.load("mnist", "train").images
    sections = [[header(argv)], quick_lenet5(test, train_images)]
    if not args.skip_released:
        sections.append(released_accuracies(test))
    if args.recipe:
        sections.append(recipe_lenet5())
    print("\n\n".join("\n".join(lines) for lines in sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
