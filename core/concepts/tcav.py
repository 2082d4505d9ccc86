"""Testing with Concept Activation Vectors (TCAV).

Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas, Sayres (2018), "Interpretability beyond
feature attribution: quantitative testing with concept activation vectors (TCAV)", ICML.

For a concept C and a layer l:

1. a *CAV* ``v`` is the unit normal of a linear classifier (logistic regression or linear
   SVM) that separates the layer's flattened activations of concept images from those of
   contrast images, pointing towards the concept; its accuracy on a held-out split says
   whether the layer can tell the concept apart at all;
2. the *directional derivative* of the target's logit ``h`` for an input x is
   ``S(x) = grad_a h(a_l(x)) . v``: how the logit changes when the activations move
   towards the concept. ``h`` is the pre-sigmoid logit of *normal* for target "normal"
   and its negation for target "dysplastic" (the project's sign convention);
3. the *TCAV score* of a class is the fraction of its inputs with ``S(x) > 0``;
4. the score is repeated over ``runs`` CAVs (fresh subsets each run) and compared, with a
   two-sided Welch t-test, with the scores of CAVs between two *random* sets of cells;
   p-values are corrected for the number of tests (Holm by default, or Bonferroni).

Layers with more than ``max_features`` activations (the early blocks: 297x297x16) are
average-pooled spatially before the CAV is learnt, and their gradients are pooled the
same way; ``S`` is then exactly the derivative along the CAV mapped back to the full
layer (pooling is linear), so the test is the paper's restricted to spatially smooth
directions.
"""
from __future__ import annotations

import hashlib
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import DisplasiaError

#: Version of the algorithm; part of the cache key.
VERSION = 2
#: Version of the cached per-set activations and gradients (independent of the test's VERSION).
FEATURES_VERSION = 2
METHOD = "tcav"
TARGETS = ("dysplastic", "normal")
CLASSIFIERS = ("logistic", "svm")
CORRECTIONS = ("holm", "bonferroni")


@dataclass(frozen=True)
class TcavParams:
    """Settings of one TCAV run (all plain scalars, so they can be part of a cache key).

    ``layers`` empty means the post-ReLU output of every conv block.
    """

    layers: tuple = ()
    runs: int = 20
    held_out: float = 1.0 / 3.0
    subsample: float = 0.8
    classifier: str = "logistic"
    min_accuracy: float = 0.65
    alpha: float = 0.05
    correction: str = "holm"
    max_features: int = 20000
    min_images: int = 10
    seed: int = 0
    batch_size: int = 16

    def check(self) -> None:
        if self.runs < 2:
            raise DisplasiaError("TCAV needs at least 2 runs (the paper uses 20 or more) for its t-test.")
        if not 0.0 < self.held_out < 1.0 or not 0.0 < self.subsample <= 1.0:
            raise DisplasiaError("held_out must be in (0, 1) and subsample in (0, 1].")
        if self.classifier not in CLASSIFIERS:
            raise DisplasiaError(f"Unknown CAV classifier '{self.classifier}': choose {' or '.join(CLASSIFIERS)}.")
        if self.correction not in CORRECTIONS:
            raise DisplasiaError(f"Unknown correction '{self.correction}': choose {' or '.join(CORRECTIONS)}.")
        if not 0.0 < self.alpha < 1.0:
            raise DisplasiaError("alpha must be between 0 and 1.")
        if self.max_features < 16 or self.min_images < 2 or self.batch_size < 1:
            raise DisplasiaError("max_features must be at least 16, min_images at least 2, batch_size at least 1.")

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["layers"] = ",".join(self.layers)
        return d


@dataclass
class TcavResult:
    """One row per (concept, layer, target) in ``table``; per-run scores in ``run_scores``.

    ``null_scores[(layer, target)]`` are the TCAV scores of the random-vs-random CAVs.
    """

    table: pd.DataFrame
    run_scores: np.ndarray  # (rows, runs), NaN where not scored
    null_scores: dict
    params: TcavParams
    timings: dict = field(default_factory=dict)
    from_cache: bool = False

    def ranking(self, layer: str, target: str = "dysplastic") -> pd.DataFrame:
        """Concepts (control excluded) at one layer for one class, most influential first."""
        rows = self.table[(self.table["layer"] == layer) & (self.table["target"] == target)
                          & (self.table["family"] != "control")].copy()
        rows["_effect"] = (rows["score"] - 0.5).abs().fillna(-1.0)
        rows["_sig"] = rows["significant"].astype(bool)
        rows["_mag"] = rows["derivative"].abs().fillna(0.0)
        rows = rows.sort_values(["_sig", "_effect", "_mag"], ascending=False)
        return rows.drop(columns=["_effect", "_sig", "_mag"]).reset_index(drop=True)


# ------------------------------------------------------------------------------ formulas

def reduce_features(activations, max_features: int) -> np.ndarray:
    """Flatten ``(N, h, w, c)`` activations to ``(N, d)``, average-pooling space if d is too big.

    The pooling factor k is the smallest integer with ``(h // k) * (w // k) * c <= max_features``;
    trailing rows/columns that do not fill a k x k window are dropped.

    Examples
    --------
    >>> a = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    >>> reduce_features(a, 16).shape, reduce_features(a, 4).shape
    ((2, 16), (2, 4))
    >>> reduce_features(a, 4)[0].tolist()
    [2.5, 4.5, 10.5, 12.5]
    """
    a = np.asarray(activations, dtype=np.float32)
    n = len(a)
    if a.ndim == 2 or a[0].size <= max_features:
        return a.reshape(n, -1)
    h, w, c = a.shape[1:]
    k = pool_factor((h, w, c), max_features)
    hh, ww = h // k, w // k
    return a[:, :hh * k, :ww * k].reshape(n, hh, k, ww, k, c).mean(axis=(2, 4)).reshape(n, -1)


def fit_cav(positives, negatives, *, classifier: str = "logistic", held_out: float = 1.0 / 3.0, seed: int = 0,
            paired: bool = False):
    """Learn a concept activation vector.

    Parameters
    ----------
    positives, negatives : (P, d), (Q, d) ndarray
        Activations of concept and contrast images.
    classifier : {"logistic", "linear SVM"}
    held_out : float
        Fraction of each side kept out of the fit to measure the accuracy.
    paired : bool
        Row i of both sides shows the same cell with and without the concept: pairs are kept
        together on one side of the split (a held-out cell whose twin was fitted would be
        judged by its twin's label, driving the accuracy *below* chance).

    Returns
    -------
    cav : (d,) float64 ndarray
        Unit vector, pointing from the contrast towards the concept.
    accuracy : float
        Accuracy on the held-out split.

    Examples
    --------
    >>> pos = np.array([[2.0, 0.1], [3.0, -0.2], [2.5, 0.0], [2.2, 0.3]])
    >>> cav, acc = fit_cav(pos, -pos, held_out=0.5)
    >>> bool(cav[0] > 0.9), acc
    (True, 1.0)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    pos, neg = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    rng = np.random.default_rng(seed)
    train, test = [], []
    shared = rng.permutation(len(pos)) if paired and len(pos) == len(neg) else None
    for side, label in ((pos, 1), (neg, 0)):
        order = shared if shared is not None else rng.permutation(len(side))
        n_test = min(max(1, int(round(held_out * len(side)))), len(side) - 1)
        test.append((side[order[:n_test]], np.full(n_test, label)))
        train.append((side[order[n_test:]], np.full(len(side) - n_test, label)))
    x_train = np.concatenate([t[0] for t in train])
    y_train = np.concatenate([t[1] for t in train])
    x_test = np.concatenate([t[0] for t in test])
    y_test = np.concatenate([t[1] for t in test])
    # Activations of a ReLU network are large and non-negative; scaling by one global
    # factor keeps the solver well conditioned without changing the direction.
    scale = float(np.abs(x_train).max()) or 1.0
    x_train, x_test = x_train / scale, x_test / scale
    basis = None
    if x_train.shape[1] > len(x_train):
        # With fewer cells than activations, the L2-regularised optimum lies in the span of the
        # training rows (representer theorem): fit in that basis and map back, the same answer
        # in a few dozen dimensions instead of tens of thousands.
        # The basis comes from the small Gram matrix (n x n), not an SVD of the wide matrix.
        eigval, eigvec = np.linalg.eigh(x_train @ x_train.T)
        keep = eigval > eigval.max() * 1e-10
        basis = (eigvec[:, keep].T @ x_train) / np.sqrt(eigval[keep])[:, None]
        x_train, x_test = x_train @ basis.T, x_test @ basis.T
    if classifier == "svm":
        model = LinearSVC(C=1.0, dual=True, max_iter=5000, random_state=seed)
    else:
        model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(x_train, y_train)
    accuracy = float((model.predict(x_test) == y_test).mean())
    w = np.asarray(model.coef_, np.float64).reshape(-1)
    if basis is not None:
        w = basis.T @ w
    norm = float(np.linalg.norm(w))
    cav = w / norm if norm > 0 else w
    return cav, accuracy


def directional_derivatives(gradients, cav) -> np.ndarray:
    """``S(x) = grad h(x) . v`` for each input: ``(N, d) @ (d,) -> (N,)``.

    Examples
    --------
    >>> directional_derivatives(np.array([[1.0, 2.0], [-3.0, 0.5]]), np.array([0.6, 0.8])).tolist()
    [2.2, -1.4]
    """
    return np.asarray(gradients, np.float64) @ np.asarray(cav, np.float64)


def tcav_score(derivatives) -> float:
    """Fraction of inputs whose target logit rises along the CAV (``S > 0``).

    Examples
    --------
    >>> tcav_score([2.2, -1.4, 0.0, 0.3])
    0.5
    """
    d = np.asarray(derivatives, np.float64)
    return float((d > 0).mean()) if len(d) else float("nan")


def t_test(scores, null_scores) -> tuple:
    """Two-sided Welch t-test of concept vs random TCAV scores: ``(t, p)``.

    Two constant samples give p = 1 when equal and p = 0 when not (the t statistic is
    undefined there; a constant difference is as certain as it gets).

    Examples
    --------
    >>> round(t_test([1.0, 1.0, 1.0], [0.4, 0.6, 0.5])[1], 3)  # t = 0.5 / (0.1 / sqrt(3)) = 8.66, Welch df = 2
    0.013
    >>> t_test([0.5, 0.5], [0.5, 0.5])
    (0.0, 1.0)
    """
    from scipy import stats

    a, b = np.asarray(scores, np.float64), np.asarray(null_scores, np.float64)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return (0.0, 1.0) if a[0] == b[0] else (math.copysign(math.inf, a[0] - b[0]), 0.0)
    with warnings.catch_warnings():  # near-constant samples: scipy warns, the answer is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        t, p = stats.ttest_ind(a, b, equal_var=False)
    return float(t), float(p)


def correct(pvalues, method: str = "holm") -> np.ndarray:
    """Family-wise corrected p-values (NaN entries are not tests and stay NaN).

    Examples
    --------
    >>> correct([0.01, 0.04, 0.03, np.nan], "holm").round(3).tolist()[:3]
    [0.03, 0.06, 0.06]
    >>> correct([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
    [0.03, 0.12, 0.09]
    """
    p = np.asarray(pvalues, np.float64)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    if method == "bonferroni":
        out[valid] = np.minimum(1.0, p[valid] * m)
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def mean_interval(values, level: float = 0.95) -> tuple:
    """Mean and its two-sided t confidence interval ``(mean, low, high)``."""
    from scipy import stats

    v = np.asarray(values, np.float64)
    mean = float(v.mean())
    if len(v) < 2 or np.ptp(v) == 0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, max(0.0, mean - half), min(1.0, mean + half)


# ------------------------------------------------------------------------------ model side

def default_layers(description) -> tuple:
    """The post-ReLU output of every conv block (the layer a conv block hands on)."""
    kinds = {info.name: info.kind for info in description.layers}
    names = description.feature_map_layers
    chosen = [n for n in names if kinds.get(n) in ("Activation", "ReLU")]
    return tuple(chosen) if chosen else tuple(names[-4:])


def check_layers(description, layers) -> tuple:
    layers = tuple(layers) if layers else default_layers(description)
    for name in layers:
        if name not in description.feature_map_layers:
            raise DisplasiaError(f"Layer '{name}' is not a convolution-block layer of this model; choose from "
                                 f"{', '.join(description.feature_map_layers)}.")
    return layers


def pool_factor(shape, max_features: int) -> int:
    """The spatial pooling factor :func:`reduce_features` uses for a ``(h, w, c)`` layer."""
    h, w, c = shape
    k = 1
    while (h // k) * (w // k) * c > max_features:
        k += 1
    return k


def _heads(loaded, layers, max_features: int):
    import keras
    import tensorflow as tf

    cache = loaded.__dict__.setdefault("_concept_heads", {})
    key = (layers, max_features)
    if key not in cache:
        logit = loaded.logit_model
        outputs = [logit.get_layer(name).output for name in layers]
        factors = [pool_factor(tuple(o.shape[1:]), max_features) for o in outputs]
        acts = keras.Model(logit.input, outputs)
        both = keras.Model(logit.input, [*outputs, logit.output])
        spec = tf.TensorSpec((None, *loaded.description.input_shape), tf.float32)

        def reduce(tensors):
            # average pooling with window = stride = k and VALID padding is reduce_features' crop + mean,
            # done in the graph so the full-size early layers never leave TensorFlow
            return [tf.reshape(t if k == 1 else tf.nn.avg_pool2d(t, k, k, "VALID"), (tf.shape(t)[0], -1))
                    for t, k in zip(tensors, factors)]

        @tf.function(input_signature=[spec], autograph=False)
        def forward(x):
            out = acts(x, training=False)
            return reduce(out if isinstance(out, (list, tuple)) else [out])

        @tf.function(input_signature=[spec], autograph=False)
        def backward(x):
            with tf.GradientTape() as tape:
                *a, z = both(x, training=False)
                total = tf.reduce_sum(z)
            return reduce(tape.gradient(total, a))
        cache[key] = (forward, backward)
    return cache[key]


def layer_features(loaded, images, layers, *, max_features: int, gradients: bool = False,
                   batch_size: int = 16) -> dict:
    """Reduced activations (or d logit(normal) / d activations) per layer: ``{layer: (N, d)}``.

    The reduction is :func:`reduce_features` (spatial average pooling of layers larger than
    ``max_features``).
    """
    forward, backward = _heads(loaded, tuple(layers), int(max_features))
    fn = backward if gradients else forward
    parts = {name: [] for name in layers}
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], np.float32)
        for name, out in zip(layers, fn(batch)):
            parts[name].append(out.numpy())
    return {name: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for name, v in parts.items()}


def set_features(loaded, image_set, layers, *, max_features: int, gradients: bool = False, batch_size: int = 16,
                 cache=None) -> dict:
    """:func:`layer_features` of a lazy image set, through the cache (so a rerun with other
    TCAV settings renders nothing)."""
    if cache is None:
        return layer_features(loaded, image_set.load(), layers, max_features=max_features, gradients=gradients,
                              batch_size=batch_size)
    from core.cache import make_key
    from core.explain.base import Explanation, Params

    token = np.frombuffer(hashlib.sha256(image_set.fingerprint.encode()).digest(), np.uint8)
    params = {"layers": ",".join(layers), "max_features": int(max_features)}
    key = make_key(loaded.description.content_hash, token, METHOD + "-features", FEATURES_VERSION,
                   "gradients" if gradients else "activations", params)
    hit = cache.get(key)
    if hit is not None and all("f:" + name in hit.extras for name in layers):
        return {name: np.asarray(hit.extras["f:" + name]) for name in layers}
    feats = layer_features(loaded, image_set.load(), layers, max_features=max_features, gradients=gradients,
                           batch_size=batch_size)
    cache.put(key, Explanation(METHOD + "-features", "both", np.zeros((0, 1, 1), np.float32),
                               np.zeros(0, np.float32), Params(params), {},
                               {"f:" + name: v for name, v in feats.items()}, FEATURES_VERSION))
    return feats


# ------------------------------------------------------------------------------ the run

COLUMNS = ("concept", "family", "source", "description", "contrast", "layer", "target", "n_concept", "n_contrast",
           "status", "accuracy", "score", "score_low", "score_high", "score_sd", "random_score", "random_sd",
           "derivative", "t", "p", "p_corrected", "significant")


def cache_key(loaded, concepts, random_pool, class_inputs, params: TcavParams) -> str:
    from core.cache import make_key

    digest = hashlib.sha256()
    for c in concepts:
        digest.update(f"{c.name}|{c.family}|{c.source}|{c.paired}|{c.positives.fingerprint}|"
                      f"{c.negatives.fingerprint if c.negatives else '-'}".encode())
    digest.update(random_pool.fingerprint.encode())
    for kind in TARGETS:
        given = class_inputs.get(kind)
        digest.update((given.fingerprint if given is not None and given.size else "-").encode())
    token = np.frombuffer(digest.digest(), dtype=np.uint8)
    return make_key(loaded.description.content_hash, token, METHOD, VERSION, "both", params.as_dict())


def run_tcav(loaded, concepts, random_pool, class_inputs, params: TcavParams = TcavParams(), *, cache=None,
             progress=None) -> TcavResult:
    """TCAV for every concept, layer and class.

    Parameters
    ----------
    loaded : core.model_io.LoadedModel
    concepts : list of core.concepts.sets.ConceptSet
    random_pool : core.concepts.sets.ImageSet
        Random cells; each run draws its random sets from it.
    class_inputs : dict
        ``{"dysplastic": ImageSet, "normal": ImageSet}``: the inputs whose directional
        derivatives make each class's TCAV score.
    cache : core.cache.ExplanationCache, optional
    progress : callable(done, total), optional
    """
    params.check()
    layers = check_layers(loaded.description, params.layers)
    params = TcavParams(**{**params.__dict__, "layers": layers})
    if not concepts:
        raise DisplasiaError("No concept set to test.")
    if not any(class_inputs.get(kind) is not None and class_inputs[kind].size for kind in TARGETS):
        raise DisplasiaError("No labelled cell to compute TCAV scores on (a class needs at least one cell).")
    key = None
    if cache is not None:
        key = cache_key(loaded, concepts, random_pool, class_inputs, params)
        hit = cache.get(key)
        if hit is not None:
            return _from_explanation(hit, params)
    result = _compute(loaded, concepts, random_pool, class_inputs, params, layers, progress, cache)
    if cache is not None:
        cache.put(key, _to_explanation(result))
    return result


def _compute(loaded, concepts, random_pool, class_inputs, params, layers, progress, cache=None):
    timings = {}
    t0 = time.perf_counter()
    usable = [c for c in concepts if not c.too_small(params.min_images)]
    steps = 2 * len(usable) + 3 + len(layers)
    done = [0]

    def tick():
        done[0] += 1
        if progress is not None:
            progress(done[0], steps)

    opts = {"max_features": params.max_features, "batch_size": params.batch_size, "cache": cache}
    feats = {}
    for c in usable:
        feats[(c.name, "pos")] = set_features(loaded, c.positives, layers, **opts)
        tick()
        if c.negatives is not None:
            feats[(c.name, "neg")] = set_features(loaded, c.negatives, layers, **opts)
        tick()
    pool = set_features(loaded, random_pool, layers, **opts)
    tick()
    grads = {}
    for kind in TARGETS:
        if class_inputs.get(kind) is not None and class_inputs[kind].size:
            grads[kind] = set_features(loaded, class_inputs[kind], layers, gradients=True, **opts)
        tick()
    timings["activations"] = time.perf_counter() - t0
    t1 = time.perf_counter()

    n_pool = random_pool.size
    set_sizes = [min(c.positives.size, c.negatives.size if c.negatives else n_pool // 2) for c in usable]
    n_null = max(2, min(n_pool // 2, int(np.median(set_sizes)) if set_sizes else n_pool // 2))
    if n_pool < 2 * params.min_images:
        raise DisplasiaError(f"The random pool holds {n_pool} cells; TCAV needs at least {2 * params.min_images}.")

    rows, run_scores, null_scores = [], [], {}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # many tiny BLAS calls: threads only fight TensorFlow's for the cores
        _score_layers(concepts, layers, params, feats, pool, grads, n_pool, n_null, rows, run_scores, null_scores,
                      tick)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["p_corrected"] = correct(table["p"].to_numpy(dtype=float), params.correction)
    table["significant"] = (table["p_corrected"] < params.alpha).fillna(False).astype(bool)
    timings["cavs"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    return TcavResult(table, np.asarray(run_scores, np.float64).reshape(len(rows), params.runs), null_scores,
                      params, timings)



def _score_layers(concepts, layers, params, feats, pool, grads, n_pool, n_null, rows, run_scores, null_scores, tick):
    """CAVs, TCAV scores and t-tests of every concept at every layer (appends to rows/run_scores).

    Only the classes with cells are scored (a dataset of normal cells only has no dysplastic rows).
    """
    targets = tuple(grads)
    for layer in layers:
        null = {kind: [] for kind in targets}
        for r in range(params.runs):
            rng = np.random.default_rng([params.seed, 1, r])
            order = rng.permutation(n_pool)
            a, b = pool[layer][order[:n_null]], pool[layer][order[n_null:2 * n_null]]
            cav, _ = fit_cav(a, b, classifier=params.classifier, held_out=params.held_out, seed=r)
            for kind in targets:
                null[kind].append(_class_score(grads[kind][layer], cav, kind))
        for kind in targets:
            null_scores[(layer, kind)] = np.asarray(null[kind])
        for ci, c in enumerate(concepts):
            if c.too_small(params.min_images):
                for kind in targets:
                    rows.append(_row(c, layer, kind, "too small"))
                    run_scores.append(np.full(params.runs, np.nan))
                continue
            scores = {kind: [] for kind in targets}
            derivs = {kind: [] for kind in targets}
            accuracies = []
            pos_all = feats[(c.name, "pos")][layer]
            for r in range(params.runs):
                rng = np.random.default_rng([params.seed, 2, ci, r])
                if c.negatives is not None:
                    neg_all = feats[(c.name, "neg")][layer]
                else:  # concept vs random set r, as in the paper
                    neg_all = pool[layer][np.random.default_rng([params.seed, 3, r]).permutation(n_pool)[:n_null]]
                m = max(params.min_images // 2, int(round(params.subsample * min(len(pos_all), len(neg_all)))))
                paired = c.paired and len(pos_all) == len(neg_all)
                pick = rng.permutation(len(pos_all))[:m]
                pos = pos_all[pick]
                neg = neg_all[pick if paired else rng.permutation(len(neg_all))[:m]]
                cav, accuracy = fit_cav(pos, neg, classifier=params.classifier, held_out=params.held_out,
                                        seed=int(rng.integers(2**31)), paired=paired)
                accuracies.append(accuracy)
                for kind in targets:
                    s = _sign(kind) * directional_derivatives(grads[kind][layer], cav)
                    scores[kind].append(tcav_score(s))
                    derivs[kind].append(float(s.mean()))
            accuracy = float(np.mean(accuracies))
            separable = accuracy >= params.min_accuracy
            for kind in targets:
                if not separable and not c.is_control:
                    rows.append(_row(c, layer, kind, "not separable", accuracy=accuracy))
                    run_scores.append(np.full(params.runs, np.nan))
                    continue
                s = np.asarray(scores[kind])
                mean, low, high = mean_interval(s)
                t, p = t_test(s, null_scores[(layer, kind)])
                nulls = null_scores[(layer, kind)]
                rows.append(_row(c, layer, kind, "control" if c.is_control else "scored", accuracy=accuracy,
                                 score=mean, score_low=low, score_high=high, score_sd=float(s.std(ddof=1)),
                                 random_score=float(nulls.mean()), random_sd=float(nulls.std(ddof=1)),
                                 derivative=float(np.mean(derivs[kind])), t=t, p=p))
                run_scores.append(s)
        tick()

def _sign(kind: str) -> float:
    return 1.0 if kind == "normal" else -1.0


def _class_score(gradients, cav, kind: str) -> float:
    return tcav_score(_sign(kind) * directional_derivatives(gradients, cav))


def _row(c, layer, kind, status, **values) -> dict:
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(concept=c.name, family=c.family, source=c.source, description=c.description, contrast=c.contrast,
               layer=layer, target=kind, n_concept=c.positives.size,
               n_contrast=c.negatives.size if c.negatives is not None else 0, status=status, significant=False)
    row.update(values)
    return row


# ------------------------------------------------------------------------------ caching

_TEXT_COLUMNS = ("concept", "family", "source", "description", "contrast", "layer", "target", "status")


def _to_explanation(result: TcavResult):
    from core.explain.base import Explanation, Params

    extras = {}
    for col in COLUMNS:
        values = result.table[col].to_numpy()
        extras["col:" + col] = values.astype(str) if col in _TEXT_COLUMNS else values.astype(np.float64)
    extras["run_scores"] = result.run_scores
    for (layer, kind), scores in result.null_scores.items():
        extras[f"null:{layer}:{kind}"] = np.asarray(scores, np.float64)
    return Explanation(METHOD, "both", np.zeros((0, 1, 1), np.float32), np.zeros(0, np.float32),
                       Params(result.params.as_dict()), result.timings, extras, VERSION)


def _from_explanation(exp, params: TcavParams) -> TcavResult:
    table = pd.DataFrame({col: exp.extras["col:" + col] for col in COLUMNS})
    for col in ("n_concept", "n_contrast"):
        table[col] = table[col].astype(int)
    table["significant"] = table["significant"].astype(bool)
    nulls = {}
    for name, value in exp.extras.items():
        if name.startswith("null:"):
            _, layer, kind = name.split(":")
            nulls[(layer, kind)] = np.asarray(value)
    return TcavResult(table, np.asarray(exp.extras["run_scores"]), nulls, params, dict(exp.timings), True)


# ------------------------------------------------------------------------------ words

def sentence(row) -> str:
    """One sentence saying what the model does with a concept at one layer for one class."""
    name, layer, kind = row["concept"], row["layer"], row["target"]
    if row["status"] == "too small":
        return (f"{name}: too few cells ({int(row['n_concept'])} vs {int(row['n_contrast'])}; at least "
                "10 per side needed), not scored.")
    if row["status"] == "not separable":
        return (f"{layer} cannot tell {name} from {row['contrast']} (CAV accuracy {row['accuracy']:.2f}, near "
                "chance), so it is not scored there.")
    share = row["score"] if row["score"] >= 0.5 else 1.0 - row["score"]
    direction = "raises" if row["score"] >= 0.5 else "lowers"
    p = f"corrected p = {row['p_corrected']:.2g}"
    if row["status"] == "control":
        verdict = ("as it should, it does not differ from random" if not row["significant"]
                   else "it differs from random: the test is not trustworthy on this layer")
        return f"Random control at {layer}: TCAV {row['score']:.2f} for {kind} cells ({p}); {verdict}."
    if row["significant"]:
        return (f"At {layer}, moving towards {name} {direction} the {kind} logit for {share:.0%} of {kind} "
                f"cells (random directions: {row['random_score']:.2f}; {p}): the model uses it.")
    return (f"At {layer}, {name} does no better than random directions for {kind} cells (TCAV "
            f"{row['score']:.2f} vs {row['random_score']:.2f}; {p}): no evidence the model uses it.")
