"""Explanation engine: every method of the study behind one call shape, plus a registry.

Each method lives in its own module with ``explain(model, images, target, **params) ->
Explanation`` (images ``(N, H, W, 3)`` float32 in [0, 1]; maps ``(N, H, W)`` raw). The
registry (:data:`METHODS`) lists names and parameters without importing TensorFlow;
:func:`compute` validates parameters, consults the on-disk cache and runs a method by name.

Examples
--------
>>> from core.explain import METHODS, get_method
>>> "gradcam" in METHODS, get_method("occlusion").defaults()["patch"]
(True, 20)
"""
from __future__ import annotations

from core.explain.base import TARGETS, Cancelled, Explanation, Params
from core.explain.registry import METHODS, MethodSpec, Param, get_method, method_names

__all__ = ["TARGETS", "Cancelled", "Explanation", "Params", "METHODS", "MethodSpec", "Param",
           "get_method", "method_names", "compute", "cache_key"]


def cache_key(model, images, method: str, target: str, params=None, *, cell_mask=None) -> str:
    """The cache key of a request (model hash, image hash, method, version, target, params)."""
    from core.cache import make_key
    from core.explain._model import handle_for
    from core.explain.base import check_images, target_sign

    spec = get_method(method)
    target_sign(target)
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    return make_key(handle.content_hash, images, spec.name, spec.version, target, spec.validate(params),
                    cell_mask=cell_mask)


def compute(method: str, model, images, target: str = "dysplastic", *, params=None, cache=None,
            progress=None, cancel=None, cell_mask=None) -> Explanation:
    """Run a registered method by name, through the cache when one is given.

    Parameters
    ----------
    method : str
        Registry name (``METHODS``).
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
    params : mapping, optional
        Method parameters; strings are parsed (CLI). Missing ones take their defaults.
    cache : core.cache.ExplanationCache, optional
    progress : callable(done, total), optional
    cancel : callable() -> bool, optional
        Asked between batches; True raises :class:`Cancelled`.
    cell_mask : ndarray, optional
        For the background test.

    Raises
    ------
    DisplasiaError
        Unknown method or parameter, out-of-range value, images that do not fit the model.
    """
    from core.errors import DisplasiaError
    from core.explain._model import handle_for
    from core.explain.base import check_images, target_sign

    spec = get_method(method)
    target_sign(target)
    values = spec.validate(params)
    if spec.needs_mask and cell_mask is None:
        raise DisplasiaError(f"{spec.title} needs a cell outline.")
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    module = spec.load()

    def run():
        extra = {"cell_mask": cell_mask} if spec.needs_mask else {}
        return module.explain(handle, images, target, progress=progress, cancel=cancel, **dict(values), **extra)

    if cache is None:
        return run()
    from core.cache import make_key

    key = make_key(handle.content_hash, images, spec.name, spec.version, target, values, cell_mask=cell_mask)
    return cache.get_or_compute(key, run)
