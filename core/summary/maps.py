"""Explanation maps for a whole dataset, through the engine and its cache.

Every map comes from ``core.explain.compute`` one cell at a time, with the shared on-disk
cache: the keys are those of the Analysis pages and of ``python -m core precompute``, so a
map computed anywhere is reused everywhere. The methods batch internally (occlusion
windows, LIME perturbations, SmoothGrad samples, Score-CAM channels), which is where the
work is.

How a raw map becomes *attribution* (larger = more evidence for the target class) follows
what the map's values mean with its parameters (``MethodSpec.sign_for``):

- "supports": the map as is (occlusion's drop of the target score, LIME's signed
  superpixel weights, CAMs, signed saliency);
- "magnitude" (|gradient| maps): the map as is, but it has no direction, so its
  "evidence" also counts places that oppose the class;
- "score" (a map of the target score with the place hidden): the drop ``baseline - map``.

To compare like with like, the summary explains every method in its signed form
(:func:`summary_params`: saliency and SmoothGrad with ``signed="yes"``), so that
*evidence*, the positive part of attribution, means "supports the class" for every method;
shares of relevance mass, deletion/insertion and the randomisation check all use it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.explain.registry import get_method, method_names

#: Methods in the summary's evidence tables (registry flag ``localisation``), in registry order.
IMAGE_METHODS = method_names(localisation=True)


def summary_params(method: str, params=None) -> dict:
    """The method's parameters for the evidence tables: signed maps where there is a choice.

    >>> summary_params("saliency"), summary_params("saliency", {"signed": "no"}), summary_params("gradcam")
    ({'signed': 'yes'}, {'signed': 'no'}, {})
    """
    spec = get_method(method)
    base = {spec.signed_param: "yes"} if spec.signed_param else {}
    if "stability_runs" in {p.name for p in spec.params}:
        base["stability_runs"] = 1  # the tables use one map per cell; the extra seeds only cost time
    return {**base, **dict(params or {})}


def attribution(method: str, maps: np.ndarray, baseline: np.ndarray, params=None) -> np.ndarray:
    """Signed attribution ``(N, H, W)`` float32 from an explanation's raw maps.

    >>> a = attribution("occlusion", np.array([[[0.6, -0.1]]]), np.array([0.8]))
    >>> [round(float(v), 3) for v in a.ravel()]
    [0.6, -0.1]
    """
    maps = np.asarray(maps, np.float32)
    if get_method(method).sign_for(params) == "score":
        return (np.asarray(baseline, np.float32).reshape(-1, 1, 1) - maps).astype(np.float32)
    return maps


def evidence(attributions: np.ndarray) -> np.ndarray:
    """Positive part of attribution (the relevance mass counted in regions)."""
    return np.maximum(np.asarray(attributions, np.float32), 0.0)


@dataclass(frozen=True, eq=False)
class MethodMaps:
    """Attribution maps of one method for the cells of a study.

    Attributes
    ----------
    method : str
    targets : tuple of str, the class explained for each cell
    attribution : (N, H, W) float32 ndarray, signed (see module docstring)
    baseline : (N,) float32 ndarray, P(target) of the unchanged image
    params : Params used
    sign : str, what the attribution's values mean ("supports" or "magnitude")
    """

    method: str
    targets: tuple
    attribution: np.ndarray
    baseline: np.ndarray
    params: object = None
    sign: str = "supports"

    @property
    def evidence(self) -> np.ndarray:
        return evidence(self.attribution)


def explain_cells(loaded, images, method: str, targets, *, params=None, cache=None, progress=None) -> MethodMaps:
    """One method on every image (one ``compute`` call per image, through ``cache``).

    Parameters
    ----------
    loaded : LoadedModel
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    method : str
        An image method of the registry.
    targets : str or sequence of str
        One class for all images or one per image.
    params : mapping, optional
        Completed by :func:`summary_params` (signed maps where there is a choice).
    cache : ExplanationCache, optional
    progress : callable(done, total), optional
        Called after each image.
    """
    from core.explain import compute

    spec = get_method(method)
    n = len(images)
    targets = tuple([targets] * n if isinstance(targets, str) else targets)
    values = spec.validate(summary_params(method, params))
    maps = np.empty((n, *images.shape[1:3]), np.float32)
    baseline = np.empty(n, np.float32)
    for i in range(n):
        exp = compute(method, loaded, images[i:i + 1], targets[i], params=values, cache=cache)
        maps[i] = attribution(method, exp.maps, exp.baseline, values)[0]
        baseline[i] = exp.baseline[0]
        if progress is not None:
            progress(i + 1, n)
    sign = spec.sign_for(values)
    return MethodMaps(method, targets, maps, baseline, values, "supports" if sign == "score" else sign)


def dataset_maps(study, methods=IMAGE_METHODS, *, target: str = "label", params=None, cache=None,
                 progress=None) -> dict:
    """``{method: MethodMaps}`` for every cell of ``study``.

    Parameters
    ----------
    study : Study
    methods : sequence of str
    target : str
        ``"label"`` (default: each cell's dataset class), ``"prediction"``, ``"dysplastic"``
        or ``"normal"`` (see ``Study.targets``).
    params : mapping of method -> parameters, optional
    cache : ExplanationCache, optional
    progress : callable(done, total), optional
        Counts cells x methods.
    """
    methods = check_methods(methods)
    targets = study.targets(target)
    n = len(study)
    out = {}
    for k, name in enumerate(methods):
        report = None if progress is None else (lambda d, t, k=k: progress(k * n + d, len(methods) * n))
        out[name] = explain_cells(study.loaded, study.images, name, targets,
                                  params=(params or {}).get(name), cache=cache, progress=report)
    return out


def check_methods(names) -> tuple:
    """Registry names that give one map per cell, deduplicated; DisplasiaError otherwise."""
    from core.errors import DisplasiaError

    for name in names:
        if not get_method(name).per_cell:
            choices = ", ".join(method_names(kind="image", needs_mask=False))
            raise DisplasiaError(f"'{name}' does not give one map per cell; choose among {choices}.")
    return tuple(dict.fromkeys(names))
