"""Which method can be trusted? Deletion / insertion curves and the randomisation check.

Deletion and insertion (Petsiuk, Das & Saenko, 2018, "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC): pixels are removed (or added) in the order of
their attribution, most important first, in ``steps`` equal steps, and the target
probability is recorded after each step. A faithful map makes the deletion curve fall
fast (small area under it) and the insertion curve rise fast (large area). The score is
the explained class's log-odds by default (``score="logit"``: on a saturated cell, P = 1.0
in float32, every probability curve is flat) or its probability. A "removed"
pixel shows the local mean colour, i.e. a heavily blurred copy of the image, rather than
black or grey, colours the model never saw. Ties in the attribution (the flat parts of
CAM, occlusion and LIME maps) are broken in a fixed random order, so a flat map behaves
like the random order it is. The same curves for a random order are the reference: per
cell, ``deletion_gain`` = random's deletion AUC minus the method's and ``insertion_gain``
= the method's insertion AUC minus random's (positive = better than random), with
bootstrap 95 % intervals over cells (``core.summary.bootstrap``).

Model-randomisation sanity check (Adebayo et al., 2018, "Sanity Checks for Saliency
Maps", NeurIPS): the maps of the trained model are compared with the maps of the same
model whose top layers (every Dense layer and the last convolution) are re-initialised.
A method that explains the model must change a lot: a high Spearman rank correlation
means the map mostly shows the image (edges, colour), not what the model learnt.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Blur of the "removed" pixels, in model-input pixels (about 1/20 of DisplasiaNet's side).
BLUR_SIGMA = 15.0
DEFAULT_STEPS = 20


# ------------------------------------------------------------------------------ deletion / insertion

def blurred_copy(image: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The image's local mean colour: a Gaussian blur of ``sigma`` pixels per channel."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(image, np.float32), sigma=(sigma, sigma, 0), mode="nearest").astype(np.float32)


def pixel_ranks(values: np.ndarray, *, seed: int = 0, tile: int = 1) -> np.ndarray:
    """Rank of every pixel, 0 = most important; ties broken in a seeded random order.

    With ``tile > 1`` the image is cut into ``tile x tile`` squares (region perturbation,
    Samek et al., 2017, "Evaluating the Visualization of What a Deep Neural Network Has
    Learned", IEEE TNNLS), each ranked by its mean attribution, and every pixel gets the
    rank of its square: squares are removed whole, which avoids the speckle that scattered
    single pixels leave.

    >>> pixel_ranks(np.array([[0.1, 0.9], [0.5, 0.0]])).tolist()
    [[2, 0], [1, 3]]
    >>> pixel_ranks(np.array([[0.1, 0.9, 0.0], [0.5, 0.0, 0.0]]), tile=2).tolist()
    [[0, 0, 1], [0, 0, 1]]
    """
    values = np.asarray(values, np.float64)
    tile = int(tile)
    if tile > 1:
        h, w = values.shape
        ty, tx = np.arange(h) // tile, np.arange(w) // tile
        ny, nx = ty[-1] + 1, tx[-1] + 1
        sums = np.zeros((ny, nx))
        counts = np.zeros((ny, nx))
        np.add.at(sums, (ty[:, None], tx[None, :]), values)
        np.add.at(counts, (ty[:, None], tx[None, :]), 1.0)
        tile_ranks = pixel_ranks(sums / counts, seed=seed)
        return tile_ranks[ty[:, None], tx[None, :]]
    flat = values.ravel()
    tiebreak = np.random.default_rng(seed).random(flat.size)
    order = np.lexsort((tiebreak, -flat))
    ranks = np.empty(flat.size, np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(np.shape(values))


def perturbed_batch(image, fill, ranks, steps: int, mode: str) -> np.ndarray:
    """The ``steps + 1`` images of one curve, ``(steps + 1, H, W, 3)`` float32.

    ``mode="deletion"``: step k shows ``fill`` on the k/steps most important pixels (or
    squares, see :func:`pixel_ranks`); ``mode="insertion"``: step k shows the image on them
    and ``fill`` elsewhere.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"unknown mode {mode!r}")
    return _fill_steps(image, fill, step_pixels(ranks, steps), mode)


def step_pixels(ranks, steps: int) -> list:
    """Flat indices of the pixels each step adds, ``steps + 1`` arrays (the first empty).

    Shared by the deletion and insertion batches of one map (:func:`curves_for`), so the
    pixels are ordered once.
    """
    flat = np.asarray(ranks).ravel()
    counts = np.round(np.linspace(0, int(flat.max()) + 1, steps + 1)).astype(np.int64)
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], counts)  # step k shows its pixels on order[:bounds[k]]
    return [order[:bounds[0]]] + [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _fill_steps(image, fill, added: list, mode: str) -> np.ndarray:
    # Each step adds its pixels to the step before: one copy of the image per step instead
    # of a (K+1, H, W, 3) select (4x faster at 299 x 299, identical values).
    image, fill = np.asarray(image, np.float32), np.asarray(fill, np.float32)
    start, shown = (image, fill) if mode == "deletion" else (fill, image)
    out = np.empty((len(added), start[..., 0].size, 3), np.float32)
    current = start.reshape(-1, 3).copy()
    shown = shown.reshape(-1, 3)
    for k, where in enumerate(added):
        current[where] = shown[where]
        out[k] = current
    return out.reshape((len(added),) + image.shape)


#: Version of the curve computation; part of the cache key of cached curves.
CURVES_VERSION = 2
#: Default score space of the curves (see the module docstring).
DEFAULT_SCORE = "logit"


def target_scores(loaded, batch, target: str, score: str = DEFAULT_SCORE) -> np.ndarray:
    """The explained class's score of each image of ``batch``: log-odds or probability, ``(N,)``."""
    from core.explain._model import handle_for
    from core.explain.base import check_space, target_score

    space = check_space(score)
    batch = np.asarray(batch, np.float32)
    handle = handle_for(loaded)
    raw = np.concatenate([handle.normal_scores(batch[a:a + 64], space) for a in range(0, len(batch), 64)])
    return target_score(raw, target, space)


def curves_for(loaded, image, values, target: str, *, steps: int = DEFAULT_STEPS, sigma: float = BLUR_SIGMA,
               seed: int = 0, fill=None, tile: int = 1, score: str = DEFAULT_SCORE, cache=None) -> dict:
    """Deletion and insertion curves of one map: ``{"deletion": (K+1,), "insertion": (K+1,)}``.

    Both curves are scored in one batch of ``2 (K + 1)`` images, in ``score`` space ("logit"
    or "probability"). With an ``ExplanationCache`` the curves are stored under a key made
    of the model's content hash, the image, the map, the fill and the settings, so a second
    run only reads them.
    """
    image = np.asarray(image, np.float32)
    fill = blurred_copy(image, sigma) if fill is None else np.asarray(fill, np.float32)

    def run():
        added = step_pixels(pixel_ranks(values, seed=seed, tile=tile), steps)
        batch = np.concatenate([_fill_steps(image, fill, added, "deletion"), _fill_steps(image, fill, added, "insertion")])
        p = target_scores(loaded, batch, target, score)
        return p[:steps + 1], p[steps + 1:]

    if cache is None:
        deletion, insertion = run()
        return {"deletion": deletion, "insertion": insertion}
    exp = cache.get_or_compute(_curves_key(loaded, image, values, fill, target, steps, tile, seed, score),
                               lambda: _as_explanation(target, steps, tile, seed, score, *run()))
    return {"deletion": np.asarray(exp.extras["deletion"]), "insertion": np.asarray(exp.extras["insertion"])}


def _digest(array) -> str:
    import hashlib

    array = np.ascontiguousarray(array, dtype=np.float32)
    return hashlib.sha256(str(array.shape).encode() + array.tobytes()).hexdigest()


def _curves_params(steps, tile, seed, score, values=None, fill=None):
    from core.explain.base import Params

    items = {"steps": int(steps), "tile": int(tile), "seed": int(seed), "score": str(score)}
    if values is not None:
        items.update(map=_digest(values), fill=_digest(fill))
    return Params(items)


def _curves_key(loaded, image, values, fill, target, steps, tile, seed, score) -> str:
    from core.cache import make_key

    return make_key(loaded.description.content_hash, image[None], "deletion_insertion", CURVES_VERSION, target,
                    _curves_params(steps, tile, seed, score, values, fill))


def _as_explanation(target, steps, tile, seed, score, deletion, insertion):
    """Curves packed as a cache entry (the cache stores Explanations; the map is a placeholder)."""
    from core.explain.base import Explanation

    return Explanation("deletion_insertion", target, np.zeros((1, 1, 1), np.float32), deletion[:1],
                       _curves_params(steps, tile, seed, score), {}, {"deletion": np.asarray(deletion, np.float32),
                                                               "insertion": np.asarray(insertion, np.float32)},
                       CURVES_VERSION)


def area_under(curve) -> float:
    """Area under a curve sampled at equal steps over [0, 1] (trapezoid rule).

    >>> area_under([1.0, 0.0]), area_under([1.0, 1.0, 1.0])
    (0.5, 1.0)
    """
    y = np.asarray(curve, np.float64)
    return float(((y[1:] + y[:-1]) / 2).mean()) if len(y) > 1 else float("nan")


def faithfulness_curves(study, maps: dict, *, steps: int = DEFAULT_STEPS, sigma: float = BLUR_SIGMA,
                        tile: int = 1, random_reference: bool = True, seed: int = 0, score: str = DEFAULT_SCORE,
                        cache=None, progress=None) -> pd.DataFrame:
    """Deletion and insertion curves of every method and cell (and of a random order).

    Parameters
    ----------
    study : Study
    maps : dict of method -> MethodMaps
    steps : int
        Number of steps K (K + 1 points per curve, from 0 to all pixels).
    sigma : float
        Blur of the fill, pixels.
    tile : int
        1 (default): single pixels; larger: squares of ``tile`` pixels removed whole.
    random_reference : bool
        Add method "random": a random pixel order (seeded per cell).
    score : {"logit", "probability"}
        Score of the explained class recorded after each step.
    cache : ExplanationCache, optional
        Curves are cached (see :func:`curves_for`).
    progress : callable(done, total), optional

    Returns
    -------
    DataFrame
        Long form: name, group, label, target, method, curve ("deletion"/"insertion"), step,
        fraction (of pixels removed or added), score (of the target class), space.
    """
    if steps < 1:
        from core.errors import DisplasiaError

        raise DisplasiaError("Deletion/insertion needs at least one step.")
    methods = list(maps)
    if not methods:
        return pd.DataFrame(columns=["name", "group", "label", "target", "method", "curve", "step", "fraction",
                                     "score", "space"])
    targets = maps[methods[0]].targets
    groups = study.groups
    jobs = [(i, m) for i in range(len(study)) for m in methods + (["random"] if random_reference else [])]
    fraction = np.linspace(0.0, 1.0, steps + 1)
    frames = []
    fills = {}
    for k, (i, method) in enumerate(jobs):
        if i not in fills:
            fills = {i: blurred_copy(study.images[i], sigma)}
        if method == "random":
            values = np.random.default_rng([seed, i]).random(study.images.shape[1:3])
            target = targets[i]
        else:
            values, target = maps[method].attribution[i], maps[method].targets[i]
        curves = curves_for(study.loaded, study.images[i], values, target, steps=steps, seed=seed, fill=fills[i],
                            tile=tile, score=score, cache=cache)
        cell = study.cells[i]
        for name, curve in curves.items():
            frames.append(pd.DataFrame({"name": cell.name, "group": groups[i], "label": cell.label, "target": target,
                                        "method": method, "curve": name, "step": np.arange(steps + 1),
                                        "fraction": fraction, "score": curve.astype(float), "space": score}))
        if progress is not None:
            progress(k + 1, len(jobs))
    return pd.concat(frames, ignore_index=True)


#: Per-cell columns of :func:`faithfulness_table` that the summary averages (with intervals).
FAITHFULNESS_COLUMNS = ("deletion_auc", "insertion_auc", "difference", "deletion_gain", "insertion_gain")


def faithfulness_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Area under the deletion and insertion curves per cell and method.

    Columns: name, group, label, target, method, deletion_auc (lower = more faithful),
    insertion_auc (higher = more faithful), difference (insertion - deletion), and, when
    the curves include the "random" order, deletion_gain (random's deletion AUC minus the
    method's) and insertion_gain (the method's insertion AUC minus random's) for the same
    cell and target: positive = better than a random order.
    """
    keys = ["name", "group", "label", "target", "method"]
    columns = keys + ["deletion_auc", "insertion_auc", "difference", "deletion_gain", "insertion_gain"]
    if curves.empty:
        return pd.DataFrame(columns=columns)
    value = "score" if "score" in curves.columns else "probability"
    aucs = (curves.sort_values("step").groupby(keys + ["curve"], sort=False, dropna=False)[value]
            .apply(area_under).unstack("curve").reset_index())
    aucs = aucs.rename(columns={"deletion": "deletion_auc", "insertion": "insertion_auc"})
    aucs.columns.name = None
    aucs["difference"] = aucs["insertion_auc"] - aucs["deletion_auc"]
    random = aucs[aucs["method"] == "random"].set_index(["name", "target"])
    pair = pd.MultiIndex.from_frame(aucs[["name", "target"]])
    if len(random):
        aucs["deletion_gain"] = random["deletion_auc"].reindex(pair).to_numpy() - aucs["deletion_auc"].to_numpy()
        aucs["insertion_gain"] = aucs["insertion_auc"].to_numpy() - random["insertion_auc"].reindex(pair).to_numpy()
    else:
        aucs["deletion_gain"] = np.nan
        aucs["insertion_gain"] = np.nan
    order = list(dict.fromkeys(curves["method"]))
    aucs["method"] = pd.Categorical(aucs["method"], order)
    out = aucs.sort_values(["method", "name"]).assign(method=lambda d: d["method"].astype(str))
    return out[columns].reset_index(drop=True)


def faithfulness_summary(table: pd.DataFrame, *, by: str = "label") -> pd.DataFrame:
    """Mean deletion / insertion AUC and gain over random per method x class (and "all").

    Each mean comes with its bootstrap 95 % interval over cells (``<column>_lo``,
    ``<column>_hi``).
    """
    from core.summary.bootstrap import add_intervals

    if table.empty:
        return pd.DataFrame()
    data = table.copy()
    data[by] = data[by].fillna("unlabelled")
    columns = [c for c in FAITHFULNESS_COLUMNS if c in data.columns]
    both = pd.concat([data, data.assign(**{by: "all"})], ignore_index=True)
    grouped = both.groupby(["method", by], sort=False)
    out = grouped[columns].mean()
    out.insert(0, "n", grouped.size())
    methods = list(dict.fromkeys(table["method"]))
    classes = list(dict.fromkeys(list(data[by]) + ["all"]))
    out = out.reindex(pd.MultiIndex.from_product([methods, classes], names=["method", by]))
    out = out.dropna(subset=["n"]).reset_index()
    return add_intervals(out, data, ["method", by], columns)


# ---------------------------------------------------------------------------------- randomisation

def randomisable_layers(loaded) -> tuple:
    """Default layers to re-initialise: every Dense layer and the last convolution."""
    desc = loaded.description
    dense = [info.name for info in desc.layers if info.kind == "Dense"]
    return tuple([desc.last_conv] + dense)


def randomised_model(loaded, layers=None, *, seed: int = 0):
    """A copy of the model with ``layers`` re-initialised (Glorot-uniform kernels, zero biases).

    The copy is a proper ``LoadedModel`` (``core.model_io.from_keras``) with its own content
    hash, so its explanations never share cache entries with the trained model's.
    """
    import keras

    from core.errors import DisplasiaError
    from core.model_io import from_keras

    layers = tuple(layers or randomisable_layers(loaded))
    clone = keras.models.clone_model(loaded.model)
    clone.set_weights(loaded.model.get_weights())
    rng = np.random.default_rng(seed)
    names = {layer.name for layer in clone.layers}
    for name in layers:
        if name not in names:
            raise DisplasiaError(f"The model has no layer '{name}' to re-initialise.")
        layer = clone.get_layer(name)
        fresh = []
        for weight in layer.get_weights():
            if weight.ndim >= 2:
                receptive = int(np.prod(weight.shape[:-2])) if weight.ndim > 2 else 1
                fan_in, fan_out = receptive * weight.shape[-2], receptive * weight.shape[-1]
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                fresh.append(rng.uniform(-limit, limit, weight.shape).astype(weight.dtype))
            else:
                fresh.append(np.zeros_like(weight))
        layer.set_weights(fresh)
    return from_keras(clone, source=f"{loaded.source} (re-initialised: {', '.join(layers)})")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def randomisation_table(study, methods, *, target: str = "label", layers=None, seed: int = 0, params=None,
                        cache=None, cells=None, maps=None, randomised=None, progress=None) -> pd.DataFrame:
    """Spearman rank correlation between the maps of the trained and the randomised model.

    Parameters
    ----------
    study : Study
    methods : sequence of str, or mapping of name -> callable(loaded, images, targets) -> (N, H, W)
        Registry methods (through the engine and ``cache``) or map functions (tests, new methods).
    target : str
        See ``Study.targets``.
    layers : sequence of str, optional
        Layers to re-initialise (default :func:`randomisable_layers`).
    cells : sequence of int, optional
        Indices of the cells to check (default all); the check recomputes every map.
    maps : dict of method -> MethodMaps, optional
        Maps of the trained model already computed for *all* cells of ``study``.
    randomised : LoadedModel, optional
        A randomised model made earlier (default :func:`randomised_model`).

    Returns
    -------
    DataFrame
        name, group, label, target, method, spearman (signed attribution), spearman_abs
        (absolute values), pixels (number compared).
    """
    from core.summary.maps import explain_cells

    index = list(range(len(study))) if cells is None else [int(i) for i in cells]
    sub = study.subset(index)
    targets = sub.targets(target)
    randomised = randomised or randomised_model(study.loaded, layers, seed=seed)
    functions = dict(methods) if isinstance(methods, dict) else {name: None for name in methods}
    groups = sub.groups
    rows = []
    total = len(functions) * 2
    for k, (method, fn) in enumerate(functions.items()):
        def run(model):
            if fn is not None:
                return np.asarray(fn(model, sub.images, targets), np.float32)
            return explain_cells(model, sub.images, method, targets, params=(params or {}).get(method),
                                 cache=cache).attribution
        if fn is None and maps is not None and method in maps and maps[method].targets == tuple(study.targets(target)):
            trained = maps[method].attribution[index]
        else:
            trained = run(study.loaded)
        if progress is not None:
            progress(k * 2 + 1, total)
        shuffled = run(randomised)
        if progress is not None:
            progress(k * 2 + 2, total)
        for j, cell in enumerate(sub.cells):
            rows.append({"name": cell.name, "group": groups[j], "label": cell.label, "target": targets[j],
                         "method": method, "spearman": _spearman(trained[j], shuffled[j]),
                         "spearman_abs": _spearman(np.abs(trained[j]), np.abs(shuffled[j])),
                         "pixels": int(trained[j].size)})
    return pd.DataFrame(rows, columns=["name", "group", "label", "target", "method", "spearman", "spearman_abs",
                                       "pixels"])


def randomisation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD of the rank correlations per method (lower = more model-dependent).

    ``spearman`` compares the signed attributions (the summary's maps all say "+ supports
    the class", so this is the same quantity for every method); ``spearman_abs`` their
    magnitudes. The mean of ``spearman`` comes with its bootstrap 95 % interval over cells.
    """
    from core.summary.bootstrap import add_intervals

    if table.empty:
        return pd.DataFrame()
    grouped = table.groupby("method", sort=False)
    out = grouped[["spearman", "spearman_abs"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out.insert(0, "n", grouped.size())
    out = out.reset_index()
    intervals = add_intervals(out.rename(columns={"spearman_mean": "spearman"}), table, ["method"], ["spearman"])
    out.insert(out.columns.get_loc("spearman_mean") + 1, "spearman_lo", intervals["spearman_lo"].to_numpy())
    out.insert(out.columns.get_loc("spearman_lo") + 1, "spearman_hi", intervals["spearman_hi"].to_numpy())
    return out
