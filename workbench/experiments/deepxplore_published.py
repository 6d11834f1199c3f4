"""DeepXplore's published MNIST values, each with its source, and the rule that judges ours.

Every number here is printed in Pei, Cao, Yang and Jana, "DeepXplore: Automated Whitebox Testing
of Deep Learning Systems", SOSP 2017 (the camera-ready), or, marked ``[D]``, read off its vector
plots (Figures 9 and 10, about +-0.3 percentage points). :data:`SOURCES` names the table or
figure of each entry; nothing else in the project holds a paper value. Percentages are stored as
fractions, times as seconds. Models: ``lenet1``, ``lenet4``, ``lenet5`` are the paper's MNI_C1,
MNI_C2, MNI_C3.

:func:`verdict` is the one rule by which a number of ours is set against a published one.
"""

import math
from collections.abc import Mapping

__all__ = [
    "ACCURACY",
    "FIGURE9",
    "FIGURE10",
    "HYPERPARAMETERS",
    "MODELS",
    "NEURONS",
    "POLLUTION_FOUND",
    "RETRAINING_EDGE",
    "SOURCES",
    "TABLE2_FOUND",
    "TABLE2_SEEDS",
    "TABLE5",
    "TABLE6_TEN_INPUTS",
    "TABLE6_TEST_SET",
    "TABLE7",
    "TABLE8_SECONDS",
    "TABLE8_SEEDS",
    "TABLE9_11_SECONDS",
    "TABLE12_ITERATIONS",
    "TABLE12_SEEDS",
    "TIMEOUT",
    "VERDICTS",
    "direction",
    "paper_rows",
    "source",
    "verdict",
]

MODELS = ("lenet1", "lenet4", "lenet5")

# Table 1: reported accuracy of MNI_C1..C3, then the authors' own measurement.
ACCURACY = {"lenet1": (0.983, 0.9833), "lenet4": (0.989, 0.9859), "lenet5": (0.9905, 0.9896)}
NEURONS = {"lenet1": 52, "lenet4": 148, "lenet5": 268}  # section 7.1 / Table 1
# Table 2, MNIST row: lambda1, lambda2, s, t, and the differences found from 2,000 seeds.
HYPERPARAMETERS = {"weight_diff": 1.0, "weight_nc": 0.1, "step": 10.0, "threshold": 0.0}
TABLE2_SEEDS = 2000
TABLE2_FOUND = {"lenet1": 1073, "lenet4": 1968, "lenet5": 827}
# Table 5 (2,000 seeds, NC at t = 0.25): per experiment 1-3, (diversity L1, NC, # diffs).
TABLE5 = {0.0: ((237.9, 0.694, 871), (194.6, 0.667, 789), (170.8, 0.689, 734)),
          1.0: ((283.3, 0.706, 776), (253.2, 0.678, 680), (182.7, 0.702, 658))}
# Table 6: NC of 10 random test inputs at t = 0.75; text: NC of the whole MNIST test set.
TABLE6_TEN_INPUTS = {"lenet1": 0.327, "lenet4": 0.331, "lenet5": 0.257}
TABLE6_TEST_SET = {"lenet1": 0.577, "lenet4": 0.764, "lenet5": 0.836}
# Table 7 (LeNet-5, 100 pairs each): total neurons, avg. # activated, avg. overlap.
TABLE7 = {"different class": (268, 83.6, 45.9), "same class": (268, 84.1, 74.2)}
# Figure 9 [D], MNIST: NC in % of DeepXplore / adversarial / random inputs (1% of the test set).
FIGURE9 = {0.0: {"deepxplore": 1.000, "adversarial": 0.934, "random": 0.932},
           0.25: {"deepxplore": 0.813, "adversarial": 0.701, "random": 0.694},
           0.5: {"deepxplore": 0.751, "adversarial": 0.630, "random": 0.609},
           0.75: {"deepxplore": 0.702, "adversarial": 0.450, "random": 0.442}}
# Table 8: seconds to 100% NC of the layers other than fully connected ones (mean of 10 runs),
# and the seeds it took.
TABLE8_SECONDS = {"lenet1": 6.6, "lenet4": 6.8, "lenet5": 7.6}
TABLE8_SEEDS = 9
# Tables 9-11, MNIST: seconds to the first difference-inducing input (mean of 10 runs).
TABLE9_11_SECONDS = {
    "step": {0.01: 0.19, 0.1: 0.26, 1.0: 0.65, 10.0: 0.62, 100.0: 0.65},
    "weight_diff": {0.5: 0.28, 1.0: 0.25, 2.0: 0.2, 3.0: 0.17},
    "weight_nc": {0.5: 0.19, 1.0: 0.22, 2.0: 0.23, 3.0: 0.26},
}
# Table 12: iterations to the first difference between LeNet-1 variants (100 seeds);
# None: no difference within TIMEOUT iterations.
TIMEOUT = 1000
TABLE12_SEEDS = 100
TABLE12_ITERATIONS = {
    "training samples": {0: None, 1: None, 100: 616.1, 1000: 503.7, 10000: 256.9},
    "neurons per layer": {0: None, 1: 69.6, 2: 53.9, 3: 33.1, 4: 18.7},
    "training epochs": {0: None, 5: 453.8, 10: 433.9, 20: 348.7, 40: 210.0},
}
# Figure 10 [D]: accuracy after retraining epochs 0-5 (100 extra inputs), per source.
FIGURE10 = {
    "lenet1": {"deepxplore": (0.9281, 0.981, 0.987, 0.990, 0.991, 0.993),
               "adversarial": (0.9281, 0.957, 0.968, 0.971, 0.975, 0.976),
               "random": (0.9281, 0.954, 0.9618, 0.9676, 0.970, 0.9724)},
    "lenet4": {"deepxplore": (0.9466, 0.9763, 0.9799, 0.992, 0.993, 0.995),
               "adversarial": (0.9466, 0.9699, 0.979, 0.9834, 0.9846, 0.986),
               "random": (0.9466, 0.9692, 0.9757, 0.9798, 0.9817, 0.983)},
    "lenet5": {"deepxplore": (0.9465, 0.9799, 0.981, 0.989, 0.994, 0.995),
               "adversarial": (0.9465, 0.9789, 0.9799, 0.986, 0.9898, 0.9916),
               "random": (0.9465, 0.9745, 0.9782, 0.983, 0.9834, 0.9843)},
}
# Section 7.3 / Figure 10 text: DeepXplore's inputs give 1-3% more accuracy improvement.
RETRAINING_EDGE = (0.01, 0.03)
POLLUTION_FOUND = 0.956  # section 7.3: share of the polluted samples identified

SOURCES = {
    "ACCURACY": "DeepXplore, SOSP 2017, Table 1",
    "NEURONS": "DeepXplore, SOSP 2017, Table 1",
    "HYPERPARAMETERS": "DeepXplore, SOSP 2017, Table 2",
    "TABLE2_FOUND": "DeepXplore, SOSP 2017, Table 2",
    "TABLE2_SEEDS": "DeepXplore, SOSP 2017, Table 2",
    "TABLE5": "DeepXplore, SOSP 2017, Table 5",
    "TABLE6_TEN_INPUTS": "DeepXplore, SOSP 2017, Table 6",
    "TABLE6_TEST_SET": "DeepXplore, SOSP 2017, Table 6 (text)",
    "TABLE7": "DeepXplore, SOSP 2017, Table 7",
    "FIGURE9": "DeepXplore, SOSP 2017, Figure 9 [D]",
    "TABLE8_SECONDS": "DeepXplore, SOSP 2017, Table 8",
    "TABLE8_SEEDS": "DeepXplore, SOSP 2017, Table 8",
    "TABLE9_11_SECONDS": "DeepXplore, SOSP 2017, Tables 9-11",
    "TABLE12_ITERATIONS": "DeepXplore, SOSP 2017, Table 12",
    "TABLE12_SEEDS": "DeepXplore, SOSP 2017, Table 12",
    "TIMEOUT": "DeepXplore, SOSP 2017, Table 12",
    "FIGURE10": "DeepXplore, SOSP 2017, Figure 10 [D]",
    "RETRAINING_EDGE": "DeepXplore, SOSP 2017, section 7.3 (Figure 10)",
    "POLLUTION_FOUND": "DeepXplore, SOSP 2017, section 7.3",
}

VERDICTS = ("reproduced", "partly", "not reproduced")


def source(name: str) -> str:
    """The citation of the entry ``name`` of this module.

    Example:
        >>> source("TABLE2_FOUND")
        'DeepXplore, SOSP 2017, Table 2'
    """
    if name not in SOURCES:
        raise ValueError(f"unknown entry {name!r}; entries: {sorted(SOURCES)}")
    return SOURCES[name]


def verdict(ours: float | int | None, half_width: float | None, paper: float | int | None, *,
            close: float = 0.1, near: float = 0.3) -> str | None:
    """How a mean of ours stands to a published value.

    ``"reproduced"`` when the published value lies in our 95% interval or within ``close``
    (relative) of our mean; ``"partly"`` within ``near``; ``"not reproduced"`` otherwise.
    ``None`` when either value is missing.

    Example:
        >>> verdict(0.82, 0.02, 0.813), verdict(0.6, 0.01, 0.8), verdict(0.3, 0.01, 0.8)
        ('reproduced', 'partly', 'not reproduced')
    """
    if ours is None or paper is None or (isinstance(ours, float) and math.isnan(ours)):
        return None
    half = 0.0 if half_width is None or math.isnan(half_width) else half_width
    gap = abs(ours - paper)
    scale = max(abs(paper), 1e-12)
    if gap <= half + 1e-12 or gap <= close * scale:
        return VERDICTS[0]
    return VERDICTS[1] if gap <= near * scale else VERDICTS[2]


def direction(difference: float | int, half_width: float | None, *,
              expected: str = "positive") -> str:
    """Whether a difference of ours (mean and 95% half-width over runs) has the published sign:
    ``"reproduced"`` when its interval excludes 0 on the expected side, ``"partly"`` when the
    mean is on that side but the interval holds 0, ``"not reproduced"`` otherwise.

    Example:
        >>> direction(0.2, 0.1), direction(0.05, 0.1), direction(-0.2, 0.1)
        ('reproduced', 'partly', 'not reproduced')
    """
    sign = 1.0 if expected == "positive" else -1.0
    d = sign * difference
    half = 0.0 if half_width is None or math.isnan(half_width) else half_width
    if d - half > 0:
        return VERDICTS[0]
    return VERDICTS[1] if d > 0 else VERDICTS[2]


def paper_rows(table: Mapping, name: str) -> list[dict]:
    """The entry ``name`` (a dict of this module) as rows ``{key, paper, source}``, for a
    notebook to show beside ours.

    Example:
        >>> paper_rows(TABLE2_FOUND, "TABLE2_FOUND")[0]
        {'key': 'lenet1', 'paper': 1073, 'source': 'DeepXplore, SOSP 2017, Table 2'}
    """
    return [{"key": k, "paper": v, "source": source(name)} for k, v in table.items()]
