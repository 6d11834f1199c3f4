"""The ``workbench`` command: data, training, the demo and the reproduction pipeline.

    workbench data download|check [mnist|cifar10|released]
    workbench train MODEL [--dataset D] [--epochs N] [--seed S] [--limit N]
    workbench demo
    workbench reproduce [--profile quick|paper] [--only NAME]
"""

import argparse
import sys

__all__ = ["main"]


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


def _demo(args) -> int:
    reproduce = _reproduce_module()
    if reproduce is not None:
        return reproduce.main(["--profile", "quick"])
    from workbench import train

    for name in ("lenet1", "lenet4", "lenet5"):
        result = train.load_or_train(name, progress=True)
        print(f"{name}: MNIST test accuracy {result.test_accuracy:.4f} "
              f"(training took {result.train_seconds:.0f} s)")
    return 0


def _reproduce_module():
    try:
        from workbench import reproduce
    except ImportError:
        return None
    return reproduce


def main(argv: list[str] | None = None) -> int:
    """Runs the ``workbench`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data_parser = commands.add_parser(
        "data", help="download or check MNIST / CIFAR-10 / the papers' released models")
    data_parser.add_argument("action", choices=("download", "check"))
    data_parser.add_argument("name", nargs="?", choices=("mnist", "cifar10", "released"))
    data_parser.set_defaults(run=_data)

    train_parser = commands.add_parser("train", help="train a zoo model (cached)")
    train_parser.add_argument("model")
    train_parser.add_argument("--dataset", default=None)
    train_parser.add_argument("--epochs", type=int, default=None)
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--limit", type=int, default=None,
                              help="train on the first N training examples only")
    train_parser.set_defaults(run=_train)

    demo_parser = commands.add_parser("demo", help="the main job: train the MNIST trio and "
                                                    "run the quick reproduction")
    demo_parser.set_defaults(run=_demo)

    reproduce = _reproduce_module()
    if reproduce is not None:
        reproduce_parser = commands.add_parser("reproduce", help="run every notebook")
        reproduce.add_arguments(reproduce_parser)
        reproduce_parser.set_defaults(run=reproduce.run)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        print(f"workbench: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
