"""The workbench command: data, training, the demo and the reproduction pipeline.

    workbench data download|check [mnist|cifar10|released]
    workbench train MODEL [--dataset D] [--epochs N] [--seed S] [--limit N]
    workbench demo [--out DIR] [--update-figures]
    workbench reproduce [--profile quick|paper|ci] [--only NAME] [--out DIR] [--update-figures]

Parsing imports nothing heavy (JAX loads only inside a command), so ``--help`` is instant; the
zoo's names and recipes are therefore listed here, and a test keeps them equal to the zoo's.
"""

import argparse
import sys
import textwrap
from pathlib import Path

__all__ = ["main"]

# models.names() by dataset, and train.recipe(name).epochs: per dataset, or per model where a
# paper gives its own (tests/test_cli.py checks them).
ZOO = {
    "mnist": ("lenet1", "lenet4", "lenet5", "deepfault_3x50_relu", "deepfault_3x50_leaky",
              "deepfault_5x30_relu", "deepfault_5x30_leaky", "deepfault_6x25_relu",
              "deepfault_6x25_leaky", "deepfault_8x20_relu", "deepfault_8x20_leaky"),
    "cifar10": ("deepfault_cifar_1x512", "deepfault_cifar_2x256", "deepfault_cifar_4x128",
                "cifar_lenet", "cifar_vgg", "cifar_gap", "resnet20"),
}
RECIPE_EPOCHS = {"mnist": 10, "cifar10": 40}
MODEL_EPOCHS = {"resnet20": 164}  # He et al. 2016: 64k iterations of batch 128
DOWNLOADS = ("mnist", "cifar10", "released")  # data.DOWNLOADS

_FORMATTER = argparse.RawDescriptionHelpFormatter  # descriptions wrapped by _text


def _text(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, 79) for p in paragraphs)


def _data(args) -> int:
    from workbench import data, reproduce

    names = [args.name] if args.name else list(data.DOWNLOADS)
    if args.action == "download":  # before any download: a file where a folder should be
        for name in names:
            reproduce.writable_folder(data.data_root() / name,
                                      f"the {name} folder (WORKBENCH_DATA)")
    status = 0
    for name in names:
        try:
            if args.action == "download":
                folder = data.download(name)
                print(f"{name}: ready in {folder}")
            elif name == "released":
                for folder, files in data.check(name).items():
                    print(f"released {folder}: {len(files)} files, SHA-256 as published "
                          f"({sum(files.values())} bytes)")
            else:
                for split, counts in data.check(name).items():
                    print(f"{name} {split}: {sum(counts.values())} examples, per class "
                          f"{list(counts.values())}")
        except data.DataError as error:
            print(f"{name}: {error}", file=sys.stderr)
            status = 1
    return status


def _train(args) -> int:
    from workbench import models, reproduce, train

    # The checkpoint's folder, checked before the training it would otherwise follow.
    epochs = train.recipe(args.model).epochs if args.epochs is None else args.epochs
    path = train.cache_path(args.model, args.dataset or models.dataset_of(args.model),
                            epochs=epochs, seed=args.seed, limit=args.limit)
    reproduce.writable_folder(path.parent, "the model cache (WORKBENCH_CACHE)")
    result = train.load_or_train(args.model, args.dataset, epochs=args.epochs, seed=args.seed,
                                 limit=args.limit, progress=True)
    source = "cached" if result.cached else "trained"
    print(f"{args.model}: test accuracy {result.test_accuracy:.4f} ({source}; training took "
          f"{result.train_seconds:.0f} s)")
    return 0


def _ensure_data(names: tuple[str, ...], progress: bool) -> int:
    """Fetches or verifies the data the notebooks read, before any notebook runs (``0``), or
    prints why it cannot, offline naming every file and where it goes (``1``)."""
    from workbench import data

    try:
        root = data.ensure(names, progress=progress)
    except data.DataError as error:
        print(f"workbench: {error}", file=sys.stderr)
        return 1
    print(f"Data: {', '.join(names)} verified in {root}", file=sys.stderr)
    return 0


def _reproduce(args) -> int:
    from workbench import reproduce

    return reproduce.run(args)


def _demo(args) -> int:
    from workbench import reproduce

    status = _ensure_data(("mnist", "released"), args.progress)
    if status:
        return status
    args.profile, args.only = "quick", []
    status = reproduce.run(args)
    from workbench import files, report

    jupyter = Path(sys.executable).with_name("jupyter")
    notebooks = args.notebooks or files.project_root() / "notebooks"
    print(f"\nExplore neurons interactively: "
          f"{report.shown(jupyter) if jupyter.is_file() else 'jupyter'} lab "
          f"{report.shown(Path(notebooks) / 'explorer.ipynb')} (run all cells, then click a "
          "neuron in the heatmap)")
    return status


def _models_text() -> str:
    return "models:\n" + "\n".join(
        textwrap.fill(", ".join(names), 79, initial_indent=f"  {dataset}: ",
                      subsequent_indent=" " * (len(dataset) + 4))
        for dataset, names in ZOO.items())


def _parser() -> argparse.ArgumentParser:
    from workbench import reproduce  # light: argparse, yaml and the standard library

    parser = argparse.ArgumentParser(
        prog="workbench", formatter_class=_FORMATTER,
        description=_text("Test deep neural networks from the inside: neuron coverage, "
                          "DeepFault, DeepXplore and fuzzing, on MNIST and CIFAR-10."),
        epilog=_text("Start with: workbench demo (every notebook at the quick profile, a few "
                     "minutes on a laptop CPU). 'workbench COMMAND --help' explains a command.",
                     "Data is read from $WORKBENCH_DATA, trained models are cached in "
                     "$WORKBENCH_CACHE (see the README for their defaults)."))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data_parser = commands.add_parser(
        "data", formatter_class=_FORMATTER,
        help="download or check MNIST, CIFAR-10 and the papers' released models",
        description=_text("Download (with SHA-256 checks) or check the datasets and the "
                          "papers' released models, in $WORKBENCH_DATA."))
    data_parser.add_argument("action", choices=("download", "check"),
                             help="download: fetch what is missing; check: verify and count")
    data_parser.add_argument("name", nargs="?", choices=DOWNLOADS,
                             help="one of them (default: all three)")
    data_parser.set_defaults(run=_data, parser=data_parser)

    train_parser = commands.add_parser(
        "train", formatter_class=_FORMATTER,
        help="train a zoo model, or load it from the model cache",
        description=_text("Train a model of the zoo with its recipe (Adam, the zoo's batch "
                          "size; SGD as in the ResNet paper for resnet20), or load the "
                          "cached checkpoint trained with the same settings, and print its "
                          "test accuracy."),
        epilog=_models_text())
    train_parser.add_argument("model", metavar="MODEL", help="a zoo model (listed below)")
    train_parser.add_argument(
        "--dataset", default=None, choices=tuple(ZOO),
        help="the dataset to train on (default: the one the model is built for)")
    train_parser.add_argument(
        "--epochs", type=int, default=None, metavar="N",
        help="passes over the training images (default: the recipe's, "
             + ", ".join([*(f"{n} on {d}" for d, n in RECIPE_EPOCHS.items()),
                          *(f"{n} for {m}" for m, n in MODEL_EPOCHS.items())]) + ")")
    train_parser.add_argument("--seed", type=int, default=0, metavar="S",
                              help="seed of the initial weights and the shuffling (default: 0)")
    train_parser.add_argument("--limit", type=int, default=None, metavar="N",
                              help="train on the first N training images only (default: all)")
    train_parser.set_defaults(run=_train, parser=train_parser)

    demo_parser = commands.add_parser(
        "demo", formatter_class=_FORMATTER,
        help="fetch MNIST if missing, run every notebook at the quick profile, print the results",
        description=_text("The main job: fetch or verify MNIST and the released models, run "
                          "every notebook at the quick profile (reduced sizes, a few minutes on "
                          "a laptop CPU) into runs/<timestamp>/, then print each notebook's "
                          "headline numbers and where the report and the figures are.",
                          "The same as 'workbench reproduce --profile quick' after the data "
                          "check; figures/ changes only with --update-figures."))
    reproduce.add_arguments(demo_parser, profile=False)
    demo_parser.set_defaults(run=_demo, parser=demo_parser)

    reproduce_parser = commands.add_parser(
        "reproduce", formatter_class=_FORMATTER,
        help="run every notebook with a profile's sizes and write the reproduction report",
        description=_text("Run every notebook in notebooks/ with papermill, with the "
                          "parameters of a profile (notebooks/profiles/<name>.yml), into a run "
                          "folder, and write the report REPRODUCTION.md there: each notebook's "
                          "results tables, ours next to the paper's, with the parameters, "
                          "versions and hardware.",
                          "A failing notebook is reported with its cell and error, and the "
                          "others still run. figures/ changes only with --update-figures."))
    reproduce.add_arguments(reproduce_parser)
    reproduce_parser.set_defaults(run=_reproduce, parser=reproduce_parser)

    from workbench import course  # light: the standard library only

    course_parser = commands.add_parser(
        "course", formatter_class=_FORMATTER,
        help="the course (notebooks/course/): student versions, or HTML with outputs",
        description=_text("student: write every chapter with its solutions and hidden tests "
                          "removed (for handing out; nbgrader-compatible metadata kept). "
                          "html: run every chapter with papermill and render it to HTML with "
                          "its outputs and figures, for publishing. Both write under "
                          "runs/course/ unless OUT is given."))
    course.add_arguments(course_parser)
    course_parser.set_defaults(run=course.run, parser=course_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the ``workbench`` command line; returns the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the command's own usage, not the top-level one
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args)
    except ValueError as error:
        print(f"workbench: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
