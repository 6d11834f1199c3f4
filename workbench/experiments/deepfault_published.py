"""DeepFault's published values, each cited by table: the only source of a "paper" column.

Eniser, Gerasimou and Sen, "DeepFault: Fault Localization for Deep Neural Networks", FASE 2019,
arXiv 1902.05974v1. The numbers are those printed in the arXiv v1 PDF (transcribed in
``shared/papers/deepfault.md``); a table cell's citation is ``SOURCE`` plus its table
(:func:`cite`). Values the paper does not print (the ReLU and 3x50 MNIST models, the step-size
sweep, a retraining experiment) are not here, so no table may show a paper value for them.

The paper's models map to the zoo as ``PAPER_MODELS`` says: ``MNIST_1/2/3`` are the 5x30, 6x25
and 8x20 LeakyReLU networks, ``CIFAR_1/2/3`` the 4x128, 2x256 and 1x512 heads on the Keras
``cifar10_cnn`` trunk (Table 2). Measures are named as in :mod:`workbench.suspiciousness`
(``tarantula``, ``ochiai``, ``dstar``) plus ``random``.
"""

__all__ = [
    "ACCURACY",
    "DATASET",
    "K_VALUES",
    "MEAN_ACCURACY",
    "MEASURES",
    "PAPER_MODELS",
    "PARAMS",
    "SECONDS_PER_INPUT",
    "SOURCE",
    "STEP",
    "TABLE3",
    "TABLE4_BY_K",
    "TABLE4_BY_MEASURE",
    "TABLE5",
    "TABLE6",
    "TABLE7",
    "TABLE10",
    "D",
    "cite",
    "rounding",
]

SOURCE = "DeepFault, arXiv 1902.05974v1"
MEASURES = ("tarantula", "ochiai", "dstar", "random")
K_VALUES = {"mnist": (1, 2, 3, 5, 10), "cifar10": (10, 20, 30, 40, 50)}  # section 5 set-up
STEP = {"mnist": 1.0, "cifar10": 10.0}  # synthesis step size (set-up)
D = 0.1  # maximum distance: 10% of each input dimension's range, on [0, 1] pixels (set-up)

# Table 2: zoo name -> the paper's name, trainable parameters, accuracy.
PAPER_MODELS = {"deepfault_5x30_leaky": "MNIST_1", "deepfault_6x25_leaky": "MNIST_2",
                "deepfault_8x20_leaky": "MNIST_3", "deepfault_cifar_4x128": "CIFAR_1",
                "deepfault_cifar_2x256": "CIFAR_2", "deepfault_cifar_1x512": "CIFAR_3"}
PARAMS = {"deepfault_5x30_leaky": 27_420, "deepfault_6x25_leaky": 22_975,
          "deepfault_8x20_leaky": 18_680, "deepfault_cifar_4x128": 411_434,
          "deepfault_cifar_2x256": 724_010, "deepfault_cifar_1x512": 1_250_858}
ACCURACY = {"deepfault_5x30_leaky": 0.966, "deepfault_6x25_leaky": 0.958,
            "deepfault_8x20_leaky": 0.95, "deepfault_cifar_4x128": 0.701,
            "deepfault_cifar_2x256": 0.726, "deepfault_cifar_1x512": 0.761}
DATASET = {name: "cifar10" if "cifar" in name else "mnist" for name in PAPER_MODELS}


def _cells(losses: dict, accuracies: dict) -> dict:
    """``{k: ((loss T, O, D*, R), (acc T, O, D*, R))}`` -> ``{(k, measure): (loss, acc)}``."""
    return {(k, m): (losses[k][i], accuracies[k][i])
            for k in losses for i, m in enumerate(MEASURES)}


# Table 3: loss and accuracy on the synthesised inputs, per model: {(k, measure): (loss, acc)}.
# Each T/O/D* cell averages 100 inputs (10 per class), each random cell 500 over five runs.
TABLE3 = {
    "deepfault_5x30_leaky": _cells(
        {1: (3.55, 6.19, 4.03, 2.42), 2: (3.73, 6.08, 3.18, 2.67), 3: (4.1, 6.19, 6.25, 1.14),
         5: (4.63, 6.68, 6.97, 1.1), 10: (4.97, 6.95, 7.4, 1.3)},
        {1: (0.26, 0.16, 0.2, 0.59), 2: (0.16, 0.23, 0.4, 0.58), 3: (0.23, 0.23, 0.33, 0.77),
         5: (0.23, 0.23, 0.13, 0.79), 10: (0.23, 0.2, 0.23, 0.75)}),
    "deepfault_6x25_leaky": _cells(
        {1: (3.48, 3.53, 3.97, 2.78), 2: (3.12, 3.76, 4.08, 0.9), 3: (2.39, 3.94, 3.04, 1.61),
         5: (2.49, 3.64, 3.48, 0.94), 10: (2.08, 3.06, 3.82, 0.49)},
        {1: (0.3, 0.2, 0.5, 0.49), 2: (0.23, 0.23, 0.13, 0.77), 3: (0.46, 0.26, 0.23, 0.67),
         5: (0.26, 0.26, 0.2, 0.73), 10: (0.4, 0.23, 0.26, 0.86)}),
    "deepfault_8x20_leaky": _cells(
        {1: (7.35, 8.23, 6.36, 3.66), 2: (4.27, 6.81, 6.5, 3.06), 3: (3.33, 7.59, 6.98, 2.91),
         5: (4.15, 7.22, 6.47, 1.22), 10: (4.45, 7.16, 5.9, 0.57)},
        {1: (0.16, 0.1, 0.13, 0.39), 2: (0.29, 0.13, 0.26, 0.56), 3: (0.26, 0.06, 0.16, 0.61),
         5: (0.16, 0.1, 0.26, 0.77), 10: (0.13, 0.13, 0.13, 0.87)}),
    "deepfault_cifar_4x128": _cells(
        {10: (12.75, 13.49, 1.33, 3.25), 20: (12.79, 12.43, 0.45, 1.8),
         30: (13.19, 13.13, 0.38, 1.43), 40: (13.69, 11.92, 0.8, 1.29),
         50: (12.1, 13.37, 0.36, 0.9)},
        {10: (0.2, 0.16, 0.9, 0.79), 20: (0.2, 0.22, 0.96, 0.88), 30: (0.18, 0.18, 0.95, 0.9),
         40: (0.14, 0.26, 0.92, 0.91), 50: (0.24, 0.17, 0.96, 0.94)}),
    "deepfault_cifar_2x256": _cells(
        {10: (8.42, 8.41, 0.0, 2.49), 20: (8.81, 6.92, 0.32, 1.67), 30: (8.35, 6.32, 0.55, 0.86),
         40: (9.4, 5.01, 0.32, 0.61), 50: (9.59, 3.38, 0.0, 0.56)},
        {10: (0.47, 0.47, 1.0, 0.84), 20: (0.44, 0.55, 0.97, 0.89), 30: (0.48, 0.6, 0.95, 0.94),
         40: (0.41, 0.68, 0.97, 0.95), 50: (0.4, 0.78, 1.0, 0.96)}),
    "deepfault_cifar_1x512": _cells(
        {10: (6.12, 1.77, 1.12, 1.21), 20: (6.12, 1.12, 0.96, 0.64), 30: (5.64, 0.76, 0.42, 0.41),
         40: (4.51, 1.12, 0.22, 0.54), 50: (4.67, 0.04, 0.64, 0.48)},
        {10: (0.62, 0.88, 0.92, 0.91), 20: (0.62, 0.92, 0.93, 0.95), 30: (0.64, 0.93, 0.96, 0.97),
         40: (0.72, 0.92, 0.97, 0.96), 50: (0.71, 0.98, 0.96, 0.96)}),
}
# Derived from Table 3 (the mean accuracy of each measure over its 15 cells, 3 models x 5 k).
MEAN_ACCURACY = {"mnist": {"tarantula": 0.251, "ochiai": 0.183, "dstar": 0.237, "random": 0.680},
                 "cifar10": {"tarantula": 0.431, "ochiai": 0.580, "dstar": 0.955,
                             "random": 0.917}}

# Table 4: distances between synthesised and original inputs (L1, L2, L-infinity). MNIST on
# [0, 1] pixels; CIFAR-10 as printed (its L1 and L2 on the 0-255 scale). By k the three
# measures are averaged; k is the dataset's K_VALUES in order.
TABLE4_BY_K = {
    "mnist": {1: (41.4, 2.0, 0.1), 2: (41.2, 1.99, 0.1), 3: (40.9, 1.98, 0.1),
              5: (40.7, 1.97, 0.1), 10: (40.3, 1.96, 0.1)},
    "cifar10": {10: (179.07, 7216.6, 15.46), 20: (144.95, 5897.4, 12.45),
                30: (124.61, 5073.9, 10.67), 40: (113.45, 4579.2, 9.89),
                50: (104.72, 4273.0, 9.24)},
}
TABLE4_BY_MEASURE = {
    "mnist": {"tarantula": (40.3, 1.97, 0.1), "ochiai": (41.0, 1.98, 0.1),
              "dstar": (41.5, 1.99, 0.1), "random": (39.2, 1.92, 0.1)},
    "cifar10": {"tarantula": (180.23, 6575.6, 19.41), "ochiai": (110.45, 4825.3, 7.84),
                "dstar": (109.4, 4823.2, 7.39), "random": (121.73, 4988.1, 11.63)},
}

# Table 5: share of the k suspicious neurons whose activation rose (all measures and models).
TABLE5 = {"mnist": {1: 0.98, 2: 0.99, 3: 0.97, 5: 0.97, 10: 0.91},
          "cifar10": {10: 0.91, 20: 0.92, 30: 0.90, 40: 0.89, 50: 0.88}}


def _neighbours(ks: tuple, table: dict) -> dict:
    """``{measure: {k: (share at k' = ks[j], ...)}}`` (``None`` for k' < k) ->
    ``{(measure, k, k'): share}``."""
    return {(m, k, kk): share for m, by_k in table.items() for k, shares in by_k.items()
            for kk, share in zip(ks, shares) if share is not None}


_ = None  # a k' < k cell: the table prints "-"
# Appendix Table 6 (MNIST) and Table 7 (CIFAR-10): share of increases among the k' >= k most
# suspicious neurons for inputs synthesised from the top k: {(measure, k, k'): share}.
TABLE6 = _neighbours(K_VALUES["mnist"], {
    "tarantula": {1: (1.0, 0.98, 0.94, 0.90, 0.78), 2: (_, 1.0, 0.98, 0.91, 0.81),
                  3: (_, _, 0.98, 0.97, 0.87), 5: (_, _, _, 0.98, 0.89), 10: (_, _, _, _, 0.91)},
    "ochiai": {1: (1.0, 1.0, 0.96, 0.97, 0.90), 2: (_, 1.0, 0.99, 0.99, 0.89),
               3: (_, _, 1.0, 0.99, 0.90), 5: (_, _, _, 0.98, 0.91), 10: (_, _, _, _, 0.97)},
    "dstar": {1: (1.0, 0.95, 0.96, 0.97, 0.84), 2: (_, 1.0, 0.98, 0.98, 0.87),
              3: (_, _, 1.0, 1.0, 0.91), 5: (_, _, _, 1.0, 0.90), 10: (_, _, _, _, 0.94)},
})
TABLE7 = _neighbours(K_VALUES["cifar10"], {
    "tarantula": {10: (0.95, 0.91, 0.92, 0.90, 0.89), 20: (_, 0.96, 0.94, 0.92, 0.90),
                  30: (_, _, 0.94, 0.92, 0.91), 40: (_, _, _, 0.95, 0.93),
                  50: (_, _, _, _, 0.94)},
    "ochiai": {10: (0.95, 0.92, 0.92, 0.91, 0.89), 20: (_, 0.97, 0.95, 0.94, 0.91),
               30: (_, _, 0.92, 0.91, 0.90), 40: (_, _, _, 0.97, 0.93), 50: (_, _, _, _, 0.91)},
    "dstar": {10: (0.81, 0.61, 0.56, 0.32, 0.15), 20: (_, 0.78, 0.49, 0.31, 0.15),
              30: (_, _, 0.79, 0.33, 0.15), 40: (_, _, _, 0.65, 0.17), 50: (_, _, _, _, 0.7)},
})
del _

# Table 10: synthesis time as printed (mm:ss), {(measure, k): text}; the paper's caption gives
# about 1 s per input on MNIST and 24.3 s on CIFAR-10 (SECONDS_PER_INPUT).
_T10 = {"mnist": {"tarantula": ("<00:01", "<00:01", "<00:01", "00:01", "00:03"),
                  "ochiai": ("<00:01", "<00:01", "<00:01", "00:01", "00:03"),
                  "dstar": ("<00:01", "<00:01", "<00:01", "<00:01", "00:02")},
        "cifar10": {"tarantula": ("00:04", "00:14", "00:29", "00:52", "01:20"),
                    "ochiai": ("00:03", "00:09", "00:17", "00:27", "00:41"),
                    "dstar": ("00:02", "00:04", "00:08", "00:14", "00:23")}}
TABLE10 = {dataset: {(m, k): text for m, texts in by_measure.items()
                     for k, text in zip(K_VALUES[dataset], texts)}
           for dataset, by_measure in _T10.items()}
SECONDS_PER_INPUT = {"mnist": 1.0, "cifar10": 24.3}


def cite(table: int | str) -> str:
    """The citation of one of the paper's tables.

    Example:
        >>> cite(3)
        'DeepFault, arXiv 1902.05974v1, Table 3'
    """
    return f"{SOURCE}, Table {table}"


def rounding(value: float) -> float:
    """Half a unit of the last digit the paper prints for ``value`` (at least two decimals for
    values below 1, since the paper drops trailing zeros: 0.2 is read as 0.20): how far a
    value may lie from ours only through the paper's rounding.

    Example:
        >>> rounding(40.3), rounding(0.2), rounding(7216.6), rounding(0.78)
        (0.05, 0.005, 0.05, 0.005)
    """
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    if abs(value) < 1:
        decimals = max(decimals, 2)
    return round(0.5 * 10.0 ** -decimals, decimals + 1)

