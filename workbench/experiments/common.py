"""What every experiment shares: the project's folders, the papers' models, result tables.

**One path convention.** A relative path (a notebook's ``out_dir``, the data root, the
checkpoint cache) is relative to the *project root*: the nearest folder at or above the current
working directory that holds a ``pyproject.toml`` or a ``.git``, or the working directory itself
where there is none (an installed ``workbench`` used from a folder of one's own). So a notebook
writes ``figures/<notebook>/`` of the repository whether papermill runs it from the repository
root, ``workbench reproduce`` runs it (in ``notebooks/``, with an absolute ``out_dir``) or it is
opened in JupyterLab from ``notebooks/``. Absolute paths are used as they are.

- figures: ``output_dir(out_dir)``;
- data: ``$WORKBENCH_DATA``, else ``<root>/data`` (:func:`data_root`);
- checkpoints: ``$WORKBENCH_CACHE``, else this user's cache folder, the same from every
  checkout and folder (:func:`model_cache`, :func:`workbench.train.default_cache`).

**The papers' models.** ``weights="trained"`` trains a zoo model here (or loads its cached
checkpoint, :func:`workbench.train.load_or_train`); ``weights="released"`` loads the weights the
paper's authors published (:func:`workbench.models.released`).
"""

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench import data, files, models, stats, train, validation
from workbench.files import project_root

__all__ = [
    "TRAIN_SIZE",
    "WEIGHTS",
    "data_root",
    "load_data",
    "load_model",
    "load_models",
    "model_cache",
    "output_dir",
    "project_root",
    "save_table",
]

WEIGHTS = ("trained", "released")
TRAIN_SIZE = {"mnist": 60_000, "cifar10": 50_000}  # training images of each dataset


def _under_root(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.is_absolute() else project_root() / path


def output_dir(out_dir: str | os.PathLike) -> Path:
    """The folder a notebook writes to, created: ``out_dir`` if absolute, else under
    :func:`project_root` (see the module docstring)."""
    folder = _under_root(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$WORKBENCH_DATA``, else ``<project root>/data``."""
    return _under_root(root or os.environ.get("WORKBENCH_DATA") or "data")


def model_cache(cache: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder: ``cache`` (a relative one under the project root), else
    :func:`workbench.train.default_cache` (``$WORKBENCH_CACHE``, else one folder per user)."""
    return _under_root(cache) if cache else train.default_cache()


def load_data(name: str, split: str, *, n: int | None = None,
              root: str | os.PathLike | None = None) -> data.Dataset:
    """The first ``n`` examples (all when ``None``) of one split of a dataset, from
    :func:`data_root`."""
    full = data.load(name, split, root=data_root(root))
    if n is None:
        return full
    n = validation.positive_int(n, "n")
    return data.Dataset(full.images[:n], full.labels[:n], full.class_names)


def load_model(name: str, *, weights: str = "trained", epochs: int | None = None,
               n_train: int | None = None, seed: int = 0,
               cache: str | os.PathLike | None = None,
               root: str | os.PathLike | None = None) -> train.TrainResult:
    """A paper's model: trained here, or with the weights its authors released.

    Args:
        name: a zoo model (``models.names()``).
        weights: ``"trained"`` (:func:`workbench.train.load_or_train`, cached) or
            ``"released"`` (:func:`workbench.models.released`; ``epochs``, ``n_train`` and
            ``seed`` are then unused).
        epochs: training epochs (``None``: the model's recipe).
        n_train: train on the first ``n_train`` training images; ``None`` or the whole
            training set share one checkpoint.
        seed: initialisation and training seed.
        cache, root: the checkpoint and data folders (:func:`model_cache`, :func:`data_root`).

    Returns:
        A :class:`workbench.train.TrainResult`; for released weights ``test_accuracy`` is
        measured on the whole test set, ``train_seconds`` is ``None`` and ``cached`` true.
    """
    validation.choice(weights, "weights", WEIGHTS)
    if name not in models.names():
        raise ValueError(f"unknown model {name!r}; the zoo has {models.names()}")
    dataset = models.dataset_of(name)
    root = data_root(root)
    if weights == "released":
        model = models.released(name, root=root)
        accuracy = train.accuracy(model, data.load(dataset, "test", root=root))
        return train.TrainResult(model, accuracy, None, True)
    if n_train is not None:
        validation.positive_int(n_train, "n_train")
    limit = None if n_train is None or n_train >= TRAIN_SIZE[dataset] else int(n_train)
    return train.load_or_train(name, epochs=epochs, seed=seed, limit=limit,
                               cache=model_cache(cache), root=root)


def load_models(names: Sequence[str], **options) -> dict[str, object]:
    """``{name: model}`` for each of ``names``, loaded by :func:`load_model` with ``options``
    (``weights``, ``epochs``, ``n_train``, ``seed``, ``cache``, ``root``)."""
    return {name: load_model(name, **options).model for name in names}


def save_table(rows: Sequence[Mapping], path: str | os.PathLike,
               columns: Sequence[str] | None = None) -> str:
    """Writes ``rows`` as ``path.csv`` and ``path.md`` (``path`` without suffix), each
    atomically (:func:`workbench.files.atomic_write`), and returns the Markdown, for a notebook
    to print. Missing values are empty cells; the CSV holds full precision, the Markdown
    :func:`workbench.stats.markdown_table`'s.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     print(save_table([{"model": "a", "ours": 0.5}], Path(folder) / "t"))
        | model | ours |
        | --- | --- |
        | a | 0.5 |
    """
    path = Path(path)
    columns = list(columns or (rows[0].keys() if rows else []))
    with files.atomic_write(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    markdown = stats.markdown_table(rows, columns)
    with files.atomic_write(path.with_suffix(".md"), "w") as f:
        f.write(markdown + "\n")
    return markdown
