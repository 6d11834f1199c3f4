"""DeepXplore's tables from the experiments' rows: means over runs with 95% intervals, the
published value beside each (:mod:`workbench.experiments.deepxplore_published`), and verdicts.

Each ``table*`` / ``figure*`` function takes the rows of one experiment of
:mod:`workbench.experiments.deepxplore` or :mod:`~workbench.experiments.deepxplore_models`
and returns one row per cell: ``runs``, ``ours`` (the mean over runs), ``ci95`` (the half-width
of its Student-t 95% interval, :func:`workbench.stats.mean_interval`), and, with
``compare=True``, ``paper``, ``paper_source`` (its table or figure) and ``verdict``. With ``compare=False`` (toy sizes, the
quick profile) no published value appears, so no ``ours - paper`` is drawn from it.
:func:`claims` gives one verdict per claim of the paper, with the numbers and the likely reason
where ours differ; :func:`series` gives the Figure 9 and 10 curves beside the paper's points.
"""

import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats

from workbench import stats
from workbench.experiments import deepxplore_published as published

__all__ = [
    "claims",
    "figure9",
    "figure10",
    "pollution",
    "series",
    "table2",
    "table5",
    "table6",
    "table7",
    "table8",
    "table12",
    "tables9_11",
]

_COMPARED = ("paper", "paper_source", "verdict")


def _interval(values) -> tuple[int, float | None, float | None]:
    """``(runs, mean, half-width)`` of the values that are not ``None``."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not kept:
        return 0, None, None
    mean, half = stats.mean_interval(kept)
    return len(kept), mean, half


def _cell(rows, column, /, **fixed) -> dict:
    """Mean and 95% half-width over the rows matching ``fixed`` (a key may be ``value``)."""
    runs, mean, half = _interval(r[column] for r in rows
                                 if all(r.get(k) == v for k, v in fixed.items()))
    return {"runs": runs, "ours": mean, "ci95": half}


def _groups(rows, keys):
    """The distinct combinations of ``keys`` in ``rows``, in order of first appearance."""
    return list(dict.fromkeys(tuple(r.get(k) for k in keys) for r in rows))


def _compared(row: dict, paper, name: str | None, compare: bool, **rule) -> dict:
    if not compare:
        return {k: v for k, v in row.items() if k not in _COMPARED}
    cited = name is not None and paper is not None
    return {**row, "paper": paper, "paper_source": published.source(name) if cited else None,
            "verdict": published.verdict(row["ours"], row["ci95"], paper, **rule)
            if isinstance(paper, (int, float)) else None}


# --------------------------------------------------------------------------- tables


def table2(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Table 2: difference-inducing inputs per 2,000 seeds (``ours``) and surviving 8-bit
    storage (``survive``), per weights, clipping, transformation and target model; the
    ``"all"`` transformation pools the transformations of each run (found / seeds x 2,000).
    The paper's count is per model (one per row of ``"all"`` transformations and a target
    model)."""
    return _table2_cells(rows, compare=compare)


def _table2_cells(rows, *, compare):
    pooled = []
    for key in _groups(rows, ("weights", "variant", "clip", "target", "run")):
        mine = [r for r in rows if (r.get("weights"), r["variant"], r["clip"], r["target"],
                                    r["run"]) == key]
        seeds = sum(r["seeds"] for r in mine)
        pooled.append({**mine[0], "transformation": "all",
                       "found_per_2000": sum(r["found"] for r in mine) / max(seeds, 1) * 2000,
                       "survive_per_2000": sum(r["survive_8bit"] for r in mine)
                       / max(seeds, 1) * 2000})
    out = []
    every = list(rows) + pooled
    for weights, variant, clip, name, target in _groups(
            every, ("weights", "variant", "clip", "transformation", "target")):
        fixed = {"weights": weights, "variant": variant, "clip": clip, "transformation": name,
                 "target": target}
        row = {**fixed, **_cell(every, "found_per_2000", **fixed)}
        survive = _cell(every, "survive_per_2000", **fixed)
        row.update(survive_8bit=survive["ours"], survive_ci95=survive["ci95"])
        paper = published.TABLE2_FOUND.get(target) if name == "all" else None
        out.append(_compared(row, paper, "TABLE2_FOUND", compare))
    return out


def _with_mean_of_models(rows, keys):
    """``rows`` plus, per run and ``keys``, a ``model: "mean"`` row averaging the models."""
    extra = []
    for key in _groups(rows, (*keys, "run")):
        mine = [r["coverage"] for r in rows if tuple(r.get(k) for k in (*keys, "run")) == key
                and r["coverage"] is not None]
        if mine:
            extra.append({**dict(zip((*keys, "run"), key)), "model": "mean",
                          "coverage": float(np.mean(mine))})
    return list(rows) + extra


def figure9(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Figure 9: NC per weights, threshold, model (and the mean of the models, which the paper
    plots) and source."""
    every = _with_mean_of_models(rows, ("weights", "threshold", "source"))
    out = []
    for weights, t, model, source in _groups(every, ("weights", "threshold", "model", "source")):
        fixed = {"weights": weights, "threshold": t, "model": model, "source": source}
        row = {**fixed, **_cell(every, "coverage", **fixed)}
        paper = published.FIGURE9.get(t, {}).get(source) if model == "mean" else None
        out.append(_compared(row, paper, "FIGURE9", compare))
    return out


def table6(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Table 6: NC of 10 random test inputs at t = 0.75, and of the whole test set."""
    return _table6_cells(rows, compare=compare)


def _table6_cells(rows, *, compare):
    out = []
    for weights, model, inputs in _groups(rows, ("weights", "model", "inputs")):
        fixed = {"weights": weights, "model": model, "inputs": inputs}
        row = {**fixed, **_cell(rows, "coverage", **fixed)}
        whole = inputs == "test set"
        table = published.TABLE6_TEST_SET if whole else published.TABLE6_TEN_INPUTS
        out.append(_compared(row, table.get(model), "TABLE6_TEST_SET" if whole
                             else "TABLE6_TEN_INPUTS", compare))
    return out


def table7(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Table 7: mean activated neurons per input and shared per pair, per threshold."""
    out = []
    for weights, pairs, t in _groups(rows, ("weights", "pairs", "threshold")):
        for metric, column in (("activated", 1), ("overlap", 2), ("overlap_share", None)):
            fixed = {"weights": weights, "pairs": pairs, "threshold": t}
            row = {**fixed, "metric": metric, **_cell(rows, metric, **fixed)}
            paper = published.TABLE7[pairs][column] if column else None
            out.append(_compared(row, paper, "TABLE7", compare))
    return out


def table5(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Table 5: diversity (L1), NC at t = 0.25 and differences per 2,000 seeds, lambda2 0 and
    1; the paper's three experiments side by side as text."""
    out = []
    for weights, value in _groups(rows, ("weights", "weight_nc")):
        for column, metric in enumerate(("diversity_l1", "coverage", "found_per_2000")):
            fixed = {"weights": weights, "weight_nc": value}
            row = {**fixed, "metric": metric, **_cell(rows, metric, **fixed)}
            runs = published.TABLE5.get(value)
            if compare:
                row.update(paper_experiments=" / ".join(str(e[column]) for e in runs)
                           if runs else None, paper_source=published.source("TABLE5"))
            out.append(row)
    return out


def table8(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Table 8: seconds (this machine; the paper's laptop beside it, not judged), seeds and
    gradient steps to full coverage of the non-dense layers, per model."""
    out = []
    for weights, model in _groups(rows, ("weights", "model")):
        fixed = {"weights": weights, "model": model}
        reached = [r for r in rows if r.get("weights") == weights and r["model"] == model]
        for metric in ("seconds", "seeds", "iterations"):
            row = {**fixed, "metric": metric, **_cell(rows, metric, **fixed),
                   "reached": sum(r["reached"] for r in reached) / max(len(reached), 1)}
            paper = {"seconds": published.TABLE8_SECONDS.get(model),
                     "seeds": published.TABLE8_SEEDS}.get(metric)
            row = _compared(row, paper, "TABLE8_SECONDS" if paper else None, compare)
            if compare and metric == "seconds":
                row["verdict"] = None  # two machines' seconds; the seeds compare
            out.append(row)
    return out


def tables9_11(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Tables 9-11: seconds (this machine; the paper's laptop beside it), gradient steps and
    seeds to the first difference-inducing input, per parameter and value."""
    out = []
    for weights, parameter, value in _groups(rows, ("weights", "parameter", "value")):
        fixed = {"weights": weights, "parameter": parameter, "value": value}
        for metric in ("seconds", "iterations", "seeds"):
            row = {**fixed, "metric": metric, **_cell(rows, metric, **fixed)}
            paper = (published.TABLE9_11_SECONDS.get(parameter, {}).get(value)
                     if metric == "seconds" else None)
            row = _compared(row, paper, "TABLE9_11_SECONDS" if paper else None, compare)
            if compare:
                row["verdict"] = None  # seconds on two machines: compare the trends (claims)
            out.append(row)
    return out


def table12(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Table 12: share of seeds with a difference within the limit and mean steps to it, per
    factor and difference; the paper's ``None`` is a timeout."""
    out = []
    for factor, d in _groups(rows, ("factor", "difference")):
        fixed = {"factor": factor, "difference": d}
        mine = [r for r in rows if r["factor"] == factor and r["difference"] == d]
        share = _interval([r["found"] / max(r["climbed"], 1) for r in mine])
        row = {**fixed, **_cell(rows, "mean_iterations", **fixed), "found_share": share[1],
               "found_share_ci95": share[2]}
        if row["ours"] is None:
            row["note"] = "timeout: no difference in any run"
        paper = published.TABLE12_ITERATIONS.get(factor, {}).get(d, "absent")
        row = _compared(row, None if paper == "absent" else paper, "TABLE12_ITERATIONS",
                        compare)
        if compare and paper is None:
            row["verdict"] = "reproduced" if row["ours"] is None else "not reproduced"
            row["note"] = "paper: timeout" + ("" if row["ours"] is None else "; ours found some")
        out.append(row)
    return out


def figure10(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Figure 10: accuracy per starting models, model, source and epoch."""
    out = []
    for start, weights, model, source, epoch in _groups(
            rows, ("start", "weights", "model", "source", "epoch")):
        fixed = {"start": start, "weights": weights, "model": model, "source": source,
                 "epoch": epoch}
        row = {**fixed, **_cell(rows, "accuracy", **fixed)}
        curve = published.FIGURE10.get(model, {}).get(source)
        out.append(_compared(row, curve[epoch] if curve and epoch < len(curve) else None,
                             "FIGURE10", compare, close=0.005, near=0.02))
    return out


def pollution(rows: Sequence[Mapping], *, compare: bool = True) -> list[dict]:
    """Pollution detection: share of the polluted training images identified."""
    row = {"measure": "polluted images identified", **_cell(rows, "identified_share"),
           "queries": _interval([r["queries"] for r in rows])[1]}
    return [_compared(row, published.POLLUTION_FOUND, "POLLUTION_FOUND", compare)]


# --------------------------------------------------------------------------- claims


def _difference(rows, value, by, a, b, /, **fixed) -> tuple[int, float | None, float | None]:
    """Mean and 95% half-width over runs of ``value`` at ``by == a`` minus at ``by == b``."""
    pairs = {}
    for r in rows:
        if all(r.get(k) == v for k, v in fixed.items()) and r.get(by) in (a, b) \
                and r.get(value) is not None:
            pairs.setdefault(r["run"], {})[r[by]] = r[value]
    return _interval([p[a] - p[b] for p in pairs.values() if a in p and b in p])


def _claim(claim, paper, n, mean, half, verdict, reason="") -> dict:
    return {"claim": claim, "paper": paper, "ours": mean, "ci95": half, "runs": n,
            "verdict": verdict, "reason": reason if verdict != "reproduced" else ""}


def _spearman(xs, ys) -> float:
    kept = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if len(kept) < 3:
        return float("nan")
    return float(scipy.stats.spearmanr(*zip(*kept)).statistic)


def claims(*, table2=(), figure9=(), table5=(), table6=(), table7=(), table8=(), tables9_11=(),
           table12=(), figure10=(), pollution=(), compare: bool = True) -> list[dict]:
    """One row per claim of the paper and weights: our numbers (mean, 95% half-width, runs), a
    verdict and, where ours differ, the likely reason. Each argument is the per-run rows of that
    experiment; ``weights`` is ``"-"`` for the experiments that train their own models. With
    ``compare=False``: the numbers only.

    A difference the paper reports (DeepXplore's coverage over the baselines, its retraining
    edge, the effect of lambda2) is reproduced when our 95% interval excludes 0 on the paper's
    side and its size is near the paper's
    (:func:`~workbench.experiments.deepxplore_published.verdict`), partly when only the sign
    holds, and not reproduced when the interval holds 0 or the sign is the other one."""
    out = []
    table2_summary = _table2_cells(table2, compare=True)
    table6_summary = _table6_cells(table6, compare=True)
    every_weights = list(dict.fromkeys(r["weights"] for rows in (
        table2, figure9, table5, table6, table7, table8, tables9_11) for r in rows))
    for weights in every_weights:
        pick = {name: [r for r in rows if r["weights"] == weights] for name, rows in (
            ("table2", table2_summary), ("figure9", figure9), ("table5", table5),
            ("table6", table6_summary), ("table7", table7), ("table8", table8),
            ("tables9_11", tables9_11))}
        out += [{"weights": weights, **c} for c in _trio_claims(**pick)]
    out += [{"weights": "-", **c} for c in _model_claims(table12, figure10, pollution)]
    if not compare:
        out = [{k: v for k, v in c.items() if k not in ("paper", "verdict", "reason")}
               for c in out]
    return out


def _gap_verdict(gap, paper, expected="positive"):
    """A reported difference: its sign first, then its size (see :func:`claims`)."""
    if not gap[0]:
        return None
    if published.direction(*gap[1:], expected=expected) != "reproduced":
        return "not reproduced"  # the wrong sign, or an interval that holds 0
    if paper is None:
        return "reproduced"
    size = published.verdict(gap[1], gap[2], paper, close=0.15, near=0.3)
    return "reproduced" if size == "reproduced" else "partly"


def _trio_claims(table2, figure9, table5, table6, table7, table8, tables9_11):
    out = []
    for r in table2:
        if r["transformation"] == "all" and r.get("paper"):
            out.append(_claim(f"Table 2: differences per 2,000 seeds, {r['target']} as target "
                              f"({'clipped' if r['clip'] else 'unclipped'})", r["paper"],
                              r["runs"], r["ours"], r["ci95"], r["verdict"],
                              "the published counts differ threefold between models with one "
                              "algorithm; ours are closer to each other. The paper's came from "
                              "the released code (a fixed target per run) on its 2017 weights"))
    mine = _with_mean_of_models(figure9, ("threshold", "source"))
    for t in sorted({r["threshold"] for r in mine}):
        for other in ("random", "adversarial"):
            gap = _difference(mine, "coverage", "source", "deepxplore", other, threshold=t,
                              model="mean")
            paper = (published.FIGURE9[t]["deepxplore"] - published.FIGURE9[t][other]
                     if t in published.FIGURE9 else None)
            out.append(_claim(f"Figure 9: NC of DeepXplore minus {other} inputs, t = {t}",
                              paper, *gap, _gap_verdict(gap, paper),
                              "a found input is its seed a few lighting steps on (it stops at "
                              "the first disagreement): a brightness shift lifts few neurons "
                              "above a high threshold that test images leave below it"))
    for metric, sign in (("diversity_l1", "positive"), ("coverage", "positive"),
                         ("found_per_2000", "negative")) if table5 else ():
        gap = _difference(table5, metric, "weight_nc", 1.0, 0.0)
        out.append(_claim(f"Table 5: {metric}, lambda2 = 1 minus 0 ({sign} in all three of "
                          "the paper's experiments)", None, *gap, _gap_verdict(gap, None, sign),
                          "on class probabilities, saturated near 1 on confident seeds, the "
                          "neuron term dominates the gradient at lambda2 = 1: larger steps, "
                          "more flips"))
    for r in table6:
        out.append(_claim(f"Table 6: NC at t = 0.75 of {r['inputs']}, {r['model']}", r["paper"],
                          r["runs"], r["ours"], r["ci95"], r["verdict"],
                          "another training of the same architectures: which neurons stay "
                          "below 0.75 of their layer's range depends on the weights"))
    for t in sorted({r["threshold"] for r in table7}):
        gap = _difference(table7, "overlap_share", "pairs", "same class", "different class",
                          threshold=t)
        out.append(_claim(f"Table 7: share of activated neurons a pair shares, same minus "
                          f"different class, t = {t} (paper: 74.2/84.1 vs 45.9/83.6)", None,
                          *gap, _gap_verdict(gap, None)))
    for model in dict.fromkeys(r["model"] for r in table8):
        seeds = _interval(r["seeds"] for r in table8 if r["model"] == model)
        out.append(_claim(f"Table 8: seeds to 100% NC of the non-dense layers, {model} (t = 0)",
                          published.TABLE8_SEEDS, *seeds,
                          published.verdict(seeds[1], seeds[2], published.TABLE8_SEEDS),
                          "at t = 0 a channel is covered unless it is its layer's minimum for "
                          "every input: a few seeds cover the conv and pooling layers"))
    for parameter, table in published.TABLE9_11_SECONDS.items():
        values = sorted(table)
        ours = [_interval(r["iterations"] for r in tables9_11 if r["parameter"] == parameter
                          and r["value"] == v)[1] for v in values]
        if all(o is None for o in ours):
            continue
        rho, paper_rho = _spearman(values, ours), _spearman(values, [table[v] for v in values])
        same = not math.isnan(rho) and np.sign(rho) == np.sign(paper_rho)
        out.append(_claim(f"Tables 9-11: rank correlation of {parameter} with the effort to the "
                          "first difference (ours: iterations; paper: seconds)", paper_rho,
                          len(values), rho, None,
                          "reproduced" if same and abs(rho) >= 0.5 else
                          "partly" if same else "not reproduced",
                          {"step": "a lighting step of s = 0.01 moves the brightness by at "
                                   "most 1% per iteration: it takes hundreds of iterations",
                           "weight_nc": "on class probabilities the neuron term pushes the "
                                        "image harder the larger lambda2 (Table 5)"}.get(
                              parameter, "")))
    return out


def _model_claims(table12_rows, figure10_rows, pollution_rows):
    out = []
    for factor in dict.fromkeys(r["factor"] for r in table12_rows):
        mine = [r for r in table12_rows if r["factor"] == factor]
        ds = sorted({r["difference"] for r in mine if r["difference"] > 0})
        means = [_interval(r["mean_iterations"] for r in mine if r["difference"] == d)[1]
                 for d in ds]
        rho = _spearman(ds, means)
        none_at_zero = all(r["found"] == 0 for r in mine if r["difference"] == 0)
        out.append(_claim(f"Table 12 ({factor}): identical models never differ, and the more "
                          "they differ the fewer iterations (rank correlation)", -1.0, len(ds),
                          rho, None,
                          "reproduced" if none_at_zero and rho <= -0.5 else
                          "partly" if none_at_zero else "not reproduced",
                          "any change of the training data or schedule reshuffles the batches, "
                          "so a small difference already changes the weights much"))
    out += _retraining_claims(figure10_rows)
    if pollution_rows:
        row = pollution(pollution_rows)[0]
        out.append(_claim("Pollution: share of the polluted training images identified",
                          row["paper"], row["runs"], row["ours"], row["ci95"], row["verdict"],
                          "our reading of the method (flag as many as were polluted, ranked by "
                          "SSIM to the found inputs); the paper gives no cut-off"))
    return out


def _retraining_claims(rows) -> list[dict]:
    out = []
    starts = list(dict.fromkeys(r["start"] for r in rows)) if rows else []
    for begin in starts:
        mine = [r for r in rows if r["start"] == begin]
        last = max(r["epoch"] for r in mine)
        for model in dict.fromkeys(r["model"] for r in mine):
            first = _interval(r["accuracy"] for r in mine  # the same for every source
                              if r["model"] == model and r["epoch"] == 0
                              and r["source"] == "random")
            paper0 = published.FIGURE10.get(model, {}).get("random", (None,))[0]
            out.append(_claim(f"Figure 10 ({begin}): {model} accuracy before retraining",
                              paper0, *first, published.verdict(first[1], first[2], paper0,
                                                                close=0.005, near=0.02),
                              "fully trained models start near Table 1's accuracy; the paper "
                              "does not say how its models were stopped below it"))
            for other in ("random", "adversarial"):
                gap = _difference([r for r in mine if r["model"] == model and r["epoch"] == last],
                                  "accuracy", "source", "deepxplore", other)
                lo, hi = published.RETRAINING_EDGE
                verdict = _gap_verdict(gap, None)
                if verdict == "reproduced" and not lo <= gap[1] <= hi:
                    verdict = "partly"
                out.append(_claim(f"Figure 10 ({begin}): {model}, accuracy after {last} epochs, "
                                  f"DeepXplore minus {other} inputs (paper: +1 to +3%)", hi,
                                  *gap, verdict, "the 100 added inputs move the accuracy by "
                                  "less than training on the base set does, and than the runs' "
                                  "spread"))
    return out


# --------------------------------------------------------------------------- figures


def series(summary: Sequence[Mapping], name: str, *, x: str, panel: str, label: str,
           figure: str) -> list[dict]:
    """Curves for figures from a table of this module: one figure per ``figure`` value, one
    panel per ``panel`` value, one curve per ``label`` value with the points ``(x, ours, ci95)``,
    and beside it the paper's points where there are.

    Returns:
        One dict per curve: ``figure``, ``file`` (``name`` and the figure's value, for a file
        name), ``panel``, ``label``, ``x_name`` (``x``), ``x``, ``y``, ``err`` (lists) and
        ``paper`` (whether the curve is the paper's).

    Example:
        >>> rows = [{"w": "ours", "m": "a", "s": "r", "t": t, "ours": 0.5, "ci95": 0.1,
        ...          "paper": 0.6} for t in (0, 1)]
        >>> [(c["file"], c["label"], c["y"])
        ...  for c in series(rows, "fig", x="t", panel="m", label="s", figure="w")]
        [('fig_ours', 'r', [0.5, 0.5]), ('fig_ours', 'r (paper)', [0.6, 0.6])]
    """
    out = []
    for f, p, name_ in _groups(summary, (figure, panel, label)):
        mine = [r for r in summary if (r[figure], r[panel], r[label]) == (f, p, name_)]
        file = name + "_" + "".join(ch if ch.isalnum() else "_" for ch in str(f)).strip("_")
        base = {"figure": f, "file": file, "panel": p, "x_name": x}
        ours = [r for r in mine if r["ours"] is not None]
        out.append({**base, "label": str(name_), "x": [r[x] for r in ours],
                    "y": [r["ours"] for r in ours],
                    "err": [0.0 if r["ci95"] is None or math.isnan(r["ci95"]) else r["ci95"]
                            for r in ours], "paper": False})
        theirs = [r for r in mine if isinstance(r.get("paper"), (int, float))]
        if theirs:
            out.append({**base, "label": f"{name_} (paper)", "x": [r[x] for r in theirs],
                        "y": [r["paper"] for r in theirs], "err": [0.0] * len(theirs),
                        "paper": True})
    return out
