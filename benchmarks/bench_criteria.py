"""The criteria and prioritisers of issue 18 over the 10,000 MNIST test images, as ratios to a
plain forward pass; LSA, DSA and MDSA against dnn-tip and SciPy on the same traces, in one run.

Run: ``WORKBENCH_DATA=... python benchmarks/bench_criteria.py [--repeats 3] [--ss-inputs 1000]
[--only criteria|surprise]`` (dnn-tip: ``pip install dnn-tip scikit-learn``, or on
``PYTHONPATH``; without it only the SciPy reference runs).

Subject: LeNet-5 trained for one epoch on the first 10,000 MNIST training images (as
``bench_coverage.py``), the 10,000 test images in batches of 1,000, the traces of every site
(``"post"``) read once (``passes.model_trace``) and timed with the forward pass they need.

1. Each criterion on those traces, its time over the plain jitted forward pass's: NLC (folded
   batch by batch), cluster coverage (TensorFuzz, fc2, sequential), IDC (fit on the training
   traces timed apart; coverage of the test set), sign-sign coverage fc1 -> fc2 (all pairs of
   ``--ss-inputs`` inputs: quadratic, so fewer than 10,000), per-input masks of NC and KMNC and
   their CAM orders, DeepGini.
2. Surprise over the fc2 traces of the 60,000 training images (test classes: predictions): LSA
   (float64, and ``float64=False``) against SciPy's ``gaussian_kde.logpdf`` per class and
   dnn-tip's ``MultiModalSA.build_by_class(LSA)`` (SciPy's ``evaluate``, then ``-log``); DSA
   against dnn-tip's ``DSA``; MDSA against dnn-tip's per-class ``MDSA`` (squared distances);
   largest relative differences of values over all inputs. Ours and dnn-tip's alternate,
   ``--repeats`` times each; medians of wall-clock and process CPU seconds.

Times exclude compilation (each jitted path runs once first; its first call is printed too)
and include moving results to the host. NeuraL-Coverage (PyTorch) is not installed here:
NLC has no peer timing.
"""

import argparse
import contextlib
import io
import statistics
import time
import warnings

import jax
import numpy as np
from bench_coverage import forward_pass, timed  # the same forward pass and timing

from workbench import (
    cluster_coverage,
    coverage,
    data,
    idc,
    nlc,
    passes,
    prioritisation,
    sign_coverage,
    surprise,
    train,
)


def once(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def clocks(fn):
    """``fn()``, its wall-clock and its process CPU seconds (dnn-tip's prints silenced)."""
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def dnn_tip_surprise(train_t, train_y, dsa_inputs):
    """dnn-tip's per-class LSA, DSA and MDSA on the same traces as functions of
    ``(test, pred)``, fitting and scoring together as ours; None if it is not installed. Its
    DSA (one thread) scores the first ``dsa_inputs`` test traces only."""
    try:
        from dnn_tip import surprise as tip
    except ImportError:
        return None
    d = train_t.shape[1]

    def dsa(test, pred):
        fit = tip.DSA(train_t, train_y)
        return fit(test[:dsa_inputs], pred[:dsa_inputs], num_threads=1)

    return {"lsa": lambda test, pred: tip.MultiModalSA.build_by_class(
                train_t, train_y, lambda a, p: tip.LSA(a, max_features=d))(test, pred),
            "dsa": dsa,
            "mdsa": lambda test, pred: tip.MultiModalSA.build_by_class(
                train_t, train_y, lambda a, p: tip.MDSA(a))(test, pred)}


def scipy_lsa(train_t, train_y, test_t, pred):
    from scipy import stats
    out = np.zeros(len(test_t))
    for c in np.unique(pred):
        kde = stats.gaussian_kde(train_t[train_y == c].T.astype(np.float64))
        out[pred == c] = -kde.logpdf(test_t[pred == c].T.astype(np.float64))
    return out


def relative(a, b, quantile=1.0):
    """The largest (or a quantile of the) relative difference of ``a`` from ``b``, over the
    inputs where both are finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    rel = np.abs(a[keep] - b[keep]) / np.maximum(np.abs(b[keep]), 1e-12)
    return float(np.quantile(rel, quantile))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ss-inputs", type=int, default=1000)
    parser.add_argument("--tip-dsa-inputs", type=int, default=100,
                        help="test inputs for dnn-tip's DSA (linear in them; scaled to 10,000)")
    parser.add_argument("--only", choices=("criteria", "surprise"),
                        help="run only part 1 (criteria) or part 2 (surprise)")
    args = parser.parse_args()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}")
    model = train.load_or_train("lenet5", epochs=1, limit=10000).model
    mnist_train, mnist_test = data.load("mnist", "train"), data.load("mnist", "test")
    test_x = mnist_test.images
    trace = passes.model_trace(model, test_x)
    acts = {s: np.asarray(v) for s, v in trace.acts.items()}
    fc2 = acts["fc2"]
    train_t = np.asarray(passes.model_trace(model, mnist_train.images,
                                            sites=("fc2",)).acts["fc2"])
    if args.only != "surprise":
        part_one(model, mnist_train, mnist_test, trace, acts, fc2, train_t, args)
    if args.only != "criteria":
        surprise_part(trace, fc2, train_t, mnist_train, args)


def part_one(model, mnist_train, mnist_test, trace, acts, fc2, train_t, args):
    test_x = mnist_test.images
    t_forward = timed(forward_pass(model, test_x), args.repeats)
    t_trace = timed(lambda: passes.model_trace(model, test_x), args.repeats)
    counts = {s: v.shape[1] for s, v in acts.items()}
    print(f"forward pass, 10,000 images: {t_forward:.3f} s; traces of every site "
          f"{t_trace:.3f} s ({t_trace / t_forward:.1f}x)")
    rows = []

    def report(name, seconds, note=""):
        rows.append((name, seconds, seconds / t_forward))
        print(f"  {name:<34} {seconds:8.3f} s  {seconds / t_forward:7.2f}x forward  {note}")

    print("\n1. criteria on the traces (ratio to the forward pass)")
    criteria(model, mnist_train, acts, counts, trace, fc2, train_t, args, report)
    print("\nsummary (criterion, seconds, ratio to forward)")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.3f} | {ratio:.2f} |")


def criteria(model, mnist_train, acts, counts, trace, fc2, train_t, args, report):

    def nlc_run():
        state = nlc.init(counts)
        for i in range(0, 10000, 1000):
            state = nlc.update(state, {s: v[i:i + 1000] for s, v in acts.items()})
        return float(nlc.value(state))
    report("NLC (10 batches)", timed(nlc_run, args.repeats), f"NLC {nlc_run():.3f}")
    threshold = float(np.median(np.linalg.norm(fc2[:500] - fc2[500:1000], axis=1))) / 2

    def cluster_run():
        corpus, _ = cluster_coverage.update(cluster_coverage.init(84, capacity=10000), fc2,
                                            threshold=threshold)
        return int(corpus.count)
    report("cluster coverage (fc2, sequential)", timed(cluster_run, args.repeats),
           f"{cluster_run()} stored at threshold {threshold:.2f}")
    relevance = np.abs(train_t).mean(axis=0)  # the benchmark's stand-in: time, not meaning
    clusters, t_fit = once(lambda: idc.fit(train_t, relevance, m=4, key=jax.random.key(0)))
    report("IDC (m=4, coverage of the test set)",
           timed(lambda: np.asarray(idc.update(idc.init(clusters), clusters, fc2)),
                 args.repeats), f"fit on 60,000 traces {t_fit:.2f} s; ks {clusters.ks}")
    n_ss = args.ss_inputs
    ss = {s: acts[s][:n_ss] for s in ("fc1", "fc2")}
    t_ss = timed(lambda: np.asarray(sign_coverage.sign_sign_coverage(ss)["fc1->fc2"]),
                 args.repeats)
    report(f"sign-sign fc1->fc2 ({n_ss} inputs)", t_ss,
           f"~{t_ss * (10000 / n_ss) ** 2:.0f} s for 10,000 (quadratic)")
    for criterion, options in (("nc", {"threshold": 0.25, "minmax_per_input": False}),
                               ("kmnc", {"profile": passes.model_profile(
                                   model, mnist_train.images), "k": 10})):
        masks = coverage.input_masks(acts, criterion=criterion, **options)
        report(f"per-input masks {criterion}", timed(lambda c=criterion, o=options: [
            np.asarray(m) for m in coverage.input_masks(acts, criterion=c, **o).values()],
            args.repeats))
        report(f"CAM order {criterion}", timed(lambda m=masks: np.asarray(
            prioritisation.coverage_additional(m)), args.repeats))
    probs = jax.nn.softmax(trace.logits)
    report("DeepGini", timed(lambda: np.asarray(prioritisation.deepgini(probs)), args.repeats))



def surprise_part(trace, fc2, train_t, mnist_train, args):
    print("\n2. surprise, 10,000 test x 60,000 training fc2 traces (seconds: medians of "
          f"{args.repeats} interleaved runs, wall-clock and process CPU)")
    train_y = mnist_train.labels.astype(np.int32)
    pred = np.asarray(trace.logits).argmax(axis=1).astype(np.int32)
    # Columns LSA keeps (variance >= 1e-5 in every class), dropped beforehand for everyone.
    keep = np.all([train_t[train_y == c].var(axis=0) >= 1e-5 for c in range(10)], axis=0)
    kept = (train_t[:, keep], train_y, fc2[:, keep], pred)
    print(f"  kept {int(keep.sum())} of {keep.size} columns")
    ours = {"lsa": lambda: np.asarray(surprise.likelihood_surprise(*kept)),
            "lsa32": lambda: np.asarray(surprise.likelihood_surprise(*kept, float64=False)),
            "dsa": lambda: np.asarray(surprise.distance_surprise(*kept)),
            "mdsa": lambda: np.asarray(surprise.mahalanobis_surprise(*kept, squared=True))}
    tip = dnn_tip_surprise(*kept[:2], args.tip_dsa_inputs)
    if tip is None:
        print("  dnn-tip not installed (pip install dnn-tip scikit-learn): SciPy's "
              "gaussian_kde is the only LSA reference")
    reference, t_scipy = once(lambda: scipy_lsa(*kept))
    for name, fn in ours.items():
        values, t_first = once(fn)  # compiles
        times, theirs = [], None
        peer = None if tip is None else tip.get(name)
        for _ in range(args.repeats):
            _, wall, cpu = clocks(fn)
            if peer is not None:
                theirs, t_wall, t_cpu = clocks(lambda p=peer: p(kept[2], kept[3]))
                times.append((wall, cpu, t_wall, t_cpu))
            else:
                times.append((wall, cpu, np.nan, np.nan))
        wall, cpu, t_wall, t_cpu = (statistics.median(t[i] for t in times) for i in range(4))
        line = f"  {name.upper():<6} ours {wall:6.2f} s (cpu {cpu:5.2f}; first call {t_first:.1f})"
        if name.startswith("lsa"):
            line += (f"; vs SciPy logpdf: max rel. diff {relative(values, reference):.1e} "
                     f"(99.9% within {relative(values, reference, 0.999):.1e})")
        if theirs is not None:
            scale = len(fc2) / len(theirs)  # dnn-tip's DSA: linear in its test inputs
            mine = values[:len(theirs)]
            line += (f"\n         dnn-tip {t_wall * scale:6.2f} s (cpu {t_cpu * scale:5.2f})"
                     f"{f', scaled from {len(theirs)} inputs' if scale != 1 else ''}: "
                     f"{t_wall * scale / wall:.1f}x faster (cpu {t_cpu * scale / cpu:.1f}x); "
                     f"max rel. diff {relative(mine, theirs):.1e}, 99.9% within "
                     f"{relative(mine, theirs, 0.999):.1e}, "
                     f"{int(np.sum(~np.isfinite(theirs)))} of theirs not finite")
        print(line)
    print(f"  SciPy gaussian_kde per class (logpdf, once) {t_scipy:.2f} s; |LSA| median "
          f"{np.median(np.abs(reference)):.1f}, smallest {np.min(np.abs(reference)):.1e}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, t_mlsa = once(lambda: np.asarray(surprise.multimodal_likelihood_surprise(
            *kept, modes=2, key=jax.random.key(0))))
    print(f"  multimodal LSA (2 modes per class, with k-means and compilation, once) "
          f"{t_mlsa:.2f} s")


if __name__ == "__main__":
    main()
