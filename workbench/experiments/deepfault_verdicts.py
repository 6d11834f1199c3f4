"""A verdict per DeepFault claim: reproduced, partly, or not reproduced, with the numbers.

The claims are those of Eniser, Gerasimou and Sen (FASE 2019, arXiv 1902.05974v1) that the
tables of :mod:`workbench.experiments.deepfault_paper` test, one verdict per dataset, weights
(released or trained) and synthesis setting. The rules, the same for every claim of a kind:

- **a value** (Table 2 accuracy, a Table 3 cell, a distance, a share of increases): each
  published value is one run of the paper's size, and so is each of our replicates, so the
  test is whether the paper's value lies inside the 95% prediction interval of one of our runs
  (``in_run``; give or take the paper's rounding). Over a table: *reproduced* when at least
  ``REPRODUCED`` (75%) of the paper's values do, *partly* when at least ``PARTLY`` (25%) do or
  the paper's direction holds, else *not reproduced*. How many also lie inside the 95%
  confidence interval of our mean (``inside``: the paper's value equals ours to our precision)
  is reported next to it. Released weights have one accuracy, no interval: within half a point
  (the paper prints 0.1 or 1 point) is reproduced, within 1.5 points partly.
- **a comparison** (suspicious against random): the paper's direction and significance
  (Mann-Whitney U, p < 0.05, and A12 on the paper's side) hold in every cell: *reproduced*;
  in at least half: *partly*.
- **time**: ours at most the paper's seconds per input is *reproduced*.

A run smaller than the paper's (``paper_size=False``) is marked *indicative* in every verdict.
Where a result differs, ``reason`` gives the most likely cause that the numbers point to.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from workbench.experiments import deepfault_published as published

__all__ = ["PARTLY", "REPRODUCED", "verdicts"]

REPRODUCED = 0.75  # share of the paper's values inside our intervals for "reproduced"
PARTLY = 0.25
_NAMES = {"tarantula": "T", "ochiai": "O", "dstar": "D*", "random": "R"}


def _p(p: float) -> str:
    """A p-value as text; one that underflows to 0 is below the smallest float64."""
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def _verdict(share: float, direction: bool = False) -> str:
    if share >= REPRODUCED:
        return "reproduced"
    return "partly" if share >= PARTLY or direction else "not reproduced"


def _settings(rows: Sequence[Mapping]) -> list[tuple[str, str, str]]:
    return list(dict.fromkeys((r["dataset"], r["weights"], r["synthesis"]) for r in rows))


def _of(rows: Sequence[Mapping], setting: tuple) -> list[Mapping]:
    return [r for r in rows if (r["dataset"], r["weights"], r["synthesis"]) == setting]


def _inside_count(rows: Sequence[Mapping], column: str = "inside") -> tuple[int, int]:
    judged = [r[column] for r in rows if r.get(column) is not None]
    return sum(judged), len(judged)


def _row(claim: str, table: int | str, setting: tuple | str, paper: str, ours: str,
         verdict: str, reason: str = "") -> dict:
    """A verdict row; ``table`` is the paper's table number (cited) or a source in words."""
    where = setting if isinstance(setting, str) else ", ".join(setting)
    source = published.cite(table) if isinstance(table, int) else table
    return {"claim": claim, "source": source, "setting": where, "published": paper,
            "measured": ours, "verdict": verdict, "reason": reason}


def _models(models: Sequence[Mapping]) -> list[dict]:
    out = []
    counted = [m for m in models if m.get("paper_params") is not None]
    if counted:
        same = all(m["params"] == m["paper_params"] for m in counted)
        names = list(dict.fromkeys(m["model"] for m in counted))
        params = {m["model"]: m["params"] for m in counted}
        out.append(_row(
            "parameter counts of Table 2's models", 2, "all",
            " / ".join(f"{published.PARAMS[n]:,}" for n in names),
            " / ".join(f"{params[n]:,}" for n in names),
            "reproduced" if same else "not reproduced",
            "" if same else "a zoo architecture differs from the paper's"))
    for weights in dict.fromkeys(m["weights"] for m in models):
        mine = [m for m in models if m["weights"] == weights and m.get("paper") is not None
                and m.get("ours") is not None]
        if not mine:
            continue
        gaps = [m["ours"] - m["paper"] for m in mine]
        if weights == "released":
            worst = max(abs(g) for g in gaps)
            verdict = "reproduced" if worst <= 0.005 else (
                "partly" if worst <= 0.015 else "not reproduced")
            ours = " / ".join(f"{m['ours']:.2%}" for m in mine)
        else:
            inside = [abs(g) <= (0.0 if np.isnan(m["pi95"]) else m["pi95"])
                      + published.rounding(m["paper"]) for g, m in zip(gaps, mine)]
            verdict = _verdict(float(np.mean(inside)), all(abs(g) <= 0.01 for g in gaps))
            ours = (" / ".join(f"{m['ours']:.2%} ± {m['ci95']:.2%}" for m in mine)
                    + f" (mean ± 95% CI; {sum(inside)}/{len(mine)} in one training run's "
                      f"95% range)")
        reason = "" if verdict == "reproduced" else (
            f"largest gap {max(gaps, key=abs):+.2%}; our training (the zoo's recipe, seeds "
            f"seed + replicate) is not the authors' run" if weights == "trained" else
            f"largest gap {max(gaps, key=abs):+.2%}")
        out.append(_row("test accuracy of the models", 2, weights,
                        " / ".join(f"{m['paper']:.1%}" for m in mine), ours, verdict, reason))
    return out


def _significance(rows: Sequence[Mapping], setting: tuple) -> dict:
    mine = _of(rows, setting)
    agree = sum(r["ours"] == r["paper"] for r in mine)
    lower = sum(r["accuracy"] < r["random_accuracy"] for r in mine)
    by_measure = ", ".join(
        f"{_NAMES[m]} {sum(r['ours'] == 'significant' for r in mine if r['measure'] == m)}"
        f"/{sum(r['measure'] == m for r in mine)}"
        for m in dict.fromkeys(r["measure"] for r in mine))
    verdict = "reproduced" if agree == len(mine) else (
        "partly" if agree >= len(mine) / 2 else "not reproduced")
    paper = ("T-R and O-R significant on every model and k; D*-R on MNIST only "
             "(Mann-Whitney U, 95%)")
    ours = (f"agrees in {agree}/{len(mine)} (model, k, measure) cells; significant (p < 0.05, "
            f"A12 < 0.5): {by_measure}; lower accuracy than random in {lower}/{len(mine)}")
    reason = "" if verdict == "reproduced" else (
        "the cells that disagree are where the measure's inputs are not classified correctly "
        "less often than random ones (see significance.csv)")
    return _row("RQ1: inputs from suspicious neurons are misclassified more often than from "
                "random neurons (significance)", 3, setting, paper, ours, verdict, reason)


def _means(rows: Sequence[Mapping], setting: tuple) -> dict:
    mine = {r["measure"]: r for r in _of(rows, setting)}
    paper = published.MEAN_ACCURACY.get(setting[0], {})
    inside, n = _inside_count(list(mine.values()), "in_run")
    close, _ = _inside_count(list(mine.values()))
    random = mine.get("random")
    ordered = random is not None and all(r["ours"] < random["ours"]
                                         for m, r in mine.items() if m != "random")
    if setting[0] == "cifar10":  # the paper's CIFAR-10 D* stays above random
        ordered = random is not None and mine.get("tarantula", random)["ours"] < random["ours"]
    verdict = _verdict(inside / max(n, 1), ordered)
    text = ", ".join(f"{_NAMES[m]} {r['ours']:.3f} ± {r['ci95']:.3f}" for m, r in mine.items())
    gaps = {m: r["ours"] - paper[m] for m, r in mine.items() if m in paper}
    reason = "" if verdict == "reproduced" else (
        "ours - paper: " + ", ".join(f"{_NAMES[m]} {g:+.3f}" for m, g in gaps.items())
        + ("; suspicious below random as in the paper" if ordered else
           "; the order suspicious < random does not hold"))
    return _row("mean accuracy on synthesised inputs per measure, over every model and k "
                "(the paper: 15 cells)", f"{published.cite(3)} (means derived from it)", setting,
                ", ".join(f"{_NAMES[m]} {v:.3f}" for m, v in paper.items()),
                f"{text} (mean ± 95% CI; {inside}/{n} in one run's 95% range, {close}/{n} "
                f"in the CI)", verdict, reason)


def _cells(rows: Sequence[Mapping], setting: tuple) -> dict:
    mine = _of(rows, setting)
    inside, n = _inside_count(mine, "in_run")
    loss_inside, loss_n = _inside_count(mine, "loss_in_run")
    close, _ = _inside_count(mine)
    verdict = _verdict(inside / max(n, 1))
    diffs = {kind: np.mean([r["ours"] - r["paper"] for r in mine if r["paper"] is not None
                            and (r["measure"] == "random") == (kind == "random")] or [np.nan])
             for kind in ("suspicious", "random")}
    reason = "" if verdict == "reproduced" else (
        f"mean ours - paper: suspicious {diffs['suspicious']:+.3f}, random "
        f"{diffs['random']:+.3f}; the cells outside one run's range are in table3.csv "
        f"(in_run)")
    return _row("loss and accuracy of every (model, k, measure) cell", 3, setting,
                f"{n} accuracy and {loss_n} loss values",
                f"in one run's 95% range: accuracy {inside}/{n}, loss {loss_inside}/{loss_n}; "
                f"accuracy in the 95% CI of our mean: {close}/{n}", verdict, reason)


def _distances(rows: Sequence[Mapping], setting: tuple, others: Sequence[Mapping]) -> dict:
    mine = _of(rows, setting)
    inside, n = _inside_count(mine, "in_run")
    by_measure = [r for r in mine if r["by"] == "measure" and r["paper"] is not None]
    l1 = {r["value"]: r for r in by_measure if r["distance"] == "l1"}
    ratio = np.mean([r["ours"] / r["paper"] for r in l1.values()]) if l1 else np.nan
    worst = max([abs(r["ours"] / r["paper"] - 1) for r in mine if r["paper"]] or [np.nan])
    verdict = _verdict(inside / max(n, 1))
    reason = ""
    if verdict != "reproduced":
        reason = (f"our L1 is {ratio:.0%} of the paper's on average; every value within "
                  f"{worst:.1%} of the paper's, while one run of ours varies by less (pi95 in "
                  f"table4.csv)")
        rms = [r for r in others if r["synthesis"] == "rms" and r["by"] == "measure"
               and r["distance"] == "l1" and r["dataset"] == setting[0]
               and r["weights"] == setting[1] and r["paper"] is not None]
        if rms and setting[2] != "rms":
            reason += ("; with the paper-era code's RMS-normalised gradients it is "
                       + ", ".join(f"{_NAMES[r['value']]} {r['ours']:.1f}" for r in rms)
                       + " (nearly every pixel then moves by d): the paper's distances "
                         "point to that normalisation")
    return _row("distances between synthesised inputs and seeds (L1, L2, L-inf)", 4, setting,
                "L1 " + ", ".join(f"{_NAMES[m]} {v[0]}" for m, v in
                                  published.TABLE4_BY_MEASURE.get(setting[0], {}).items()),
                "L1 " + ", ".join(f"{_NAMES[m]} {r['ours']:.1f} ± {r['ci95']:.1f}"
                                  for m, r in l1.items())
                + f"; {inside}/{n} values (L1, L2, L-inf) in one run's 95% range",
                verdict, reason)


def _rose(rows: Sequence[Mapping], setting: tuple) -> dict:
    mine = _of(rows, setting)
    inside, n = _inside_count(mine, "in_run")
    close = all(r["ours"] >= r["paper"] - 0.05 for r in mine if r["paper"] is not None)
    verdict = _verdict(inside / max(n, 1), close)
    reason = "" if verdict == "reproduced" else (
        "ours - paper: " + ", ".join(f"k={r['k']} {r['ours'] - r['paper']:+.3f}"
                                     for r in mine if r["paper"] is not None))
    return _row("share of the k suspicious neurons whose activation rose", 5, setting,
                ", ".join(f"k={r['k']} {r['paper']:.0%}" for r in mine
                          if r["paper"] is not None),
                ", ".join(f"k={r['k']} {r['ours']:.1%}" for r in mine)
                + f" ({inside}/{n} in one run's 95% range)", verdict, reason)


def _neighbours(rows: Sequence[Mapping], setting: tuple) -> dict:
    mine = _of(rows, setting)
    inside, n = _inside_count(mine, "in_run")
    cells = {(r["measure"], r["k"]): [] for r in mine}
    for r in mine:
        cells[(r["measure"], r["k"])].append(r)
    falling = [c[-1]["ours"] <= c[0]["ours"] for c in cells.values() if len(c) > 1]
    falls = bool(falling) and bool(np.mean(falling) >= REPRODUCED)
    verdict = _verdict(inside / max(n, 1), falls)
    table = 6 if setting[0] == "mnist" else 7
    reason = "" if verdict == "reproduced" else (
        "mean ours - paper "
        f"{np.mean([r['ours'] - r['paper'] for r in mine if r['paper'] is not None]):+.3f}"
        + ("; the share falls with k' as in the paper" if falls else ""))
    return _row("share of increases among the k' >= k most suspicious neurons", table,
                setting, "falls from about 1.0 at k' = k to 0.78-0.97 at the largest k'"
                if table == 6 else "falls with k' (D* to 0.15)",
                f"{inside}/{n} values in one run's 95% range; falls with k' in "
                f"{sum(falling)}/{len(falling)} (measure, k)", verdict, reason)


def _time(rows: Sequence[Mapping]) -> list[dict]:
    out = []
    for dataset, synthesis in dict.fromkeys((r["dataset"], r["synthesis"]) for r in rows):
        mine = [r for r in rows if (r["dataset"], r["synthesis"]) == (dataset, synthesis)]
        ours = float(np.median([r["ours_per_input"] for r in mine]))
        paper = published.SECONDS_PER_INPUT[dataset]
        out.append(_row("synthesis time per input", 10, f"{dataset}, {synthesis}",
                        f"about {paper:g} s per input",
                        f"{ours * 1000:.2f} ms per input (median over measures and k)",
                        "reproduced" if ours <= paper else "not reproduced",
                        "one jitted, vectorised call per class's seeds" if ours <= paper
                        else "slower than the paper's"))
    return out


def _layers(rows: Sequence[Mapping]) -> list[dict]:
    out = []
    for dataset, weights in dict.fromkeys((r["dataset"], r["weights"]) for r in rows):
        mine = [r for r in rows if (r["dataset"], r["weights"]) == (dataset, weights)]
        k = max(r["k"] for r in mine)
        top = [r for r in mine if r["k"] == k]
        deepest = [r["share"] for r in top
                   if r["depth"] == max(t["depth"] for t in top if t["model"] == r["model"])]
        first = [r["share"] for r in top if r["depth"] == 1]
        out.append(_row("RQ3: where the suspicious neurons sit", f"{published.SOURCE}, RQ3",
                        f"{dataset}, {weights}", "no values in the paper's tables",
                        f"k={k}: {np.mean(deepest):.0%} in the last hidden layer, "
                        f"{np.mean(first):.0%} in the first (layers.csv, layers.png)",
                        "not compared"))
    return out


def _budget(rows: Sequence[Mapping]) -> list[dict]:
    out = []
    for dataset, weights in dict.fromkeys((r["dataset"], r["weights"]) for r in rows):
        mine = {r["normalize"]: r for r in rows
                if (r["dataset"], r["weights"]) == (dataset, weights)}
        text = "; ".join(f"{n}: gap {r['gap']:.3f} (p {_p(r['p'])}, A12 {r['a12']:.2f}"
                         + (f", {r['gap_remaining']:.0%} of raw" if "gap_remaining" in r
                            else "") + ")" for n, r in mine.items())
        out.append(_row("suspicious vs random at a matched perturbation budget",
                        "not in the paper (beyond its Table 3)",
                        f"{dataset}, {weights}", "not in the paper", text, "not in the paper"))
    return out


def verdicts(models: Sequence[Mapping], tables: Mapping[str, Sequence[Mapping]],
             gap: Sequence[Mapping] = (), *, paper_size: bool,
             datasets: Sequence[str] = ("mnist",)) -> list[dict]:
    """One verdict per claim (see the module docstring for the rules).

    Args:
        models: :func:`workbench.experiments.deepfault_paper.table2`'s rows.
        tables: :func:`workbench.experiments.deepfault_paper.tables`'s dict.
        gap: :func:`workbench.experiments.deepfault_paper.budget_gap`'s rows.
        paper_size: whether the run had the paper's sizes; if not, each verdict is marked
            indicative.
        datasets: the datasets run; a missing CIFAR-10 gets a "pending a GPU run" row.

    Returns:
        Rows: ``claim``, ``source`` (the paper's table), ``setting`` (dataset, weights,
        synthesis), ``published`` (the paper's values), ``measured`` (ours, in words),
        ``verdict``, ``reason``. The columns are not named ``paper`` and ``ours``: these rows
        are text, with no ``ours - paper`` difference to draw.
    """
    out = _models(models)
    settings = _settings(tables.get("table3_means", ()))
    for setting in settings:
        out.append(_means(tables["table3_means"], setting))
        out.append(_cells(tables["table3"], setting))
        out.append(_significance(tables["significance"], setting))
    for setting in settings:
        out.append(_distances(tables["table4"], setting, tables["table4"]))
    for setting in settings:
        out.append(_rose(tables["table5"], setting))
        out.append(_neighbours(tables["table6_7"], setting))
    out += _time(tables.get("table10", ()))
    out += _layers(tables.get("layers", ()))
    out += _budget(gap)
    if "cifar10" not in datasets:
        out.append(_row("CIFAR-10: models' accuracy, loss and accuracy, distances, increases, "
                        "time", f"{published.SOURCE}, Tables 2-5, 7, 10", "cifar10",
                        "see the paper's tables",
                        "not run", "pending a GPU run",
                        "training the three CIFAR-10 models wants a GPU"))
    if not paper_size:
        for row in out:
            row["verdict"] = f"indicative (reduced sizes): {row['verdict']}"
    return out
