"""'Warm all methods': fill the disk cache for the current cell in the background."""
from __future__ import annotations

import streamlit as st

from core.explain import compute
from core.preprocess import image_hash
from ui import explain_view as ev
from ui import resources


def warm_all(ctx) -> None:
    key = (ctx.loaded.description.content_hash, image_hash(ctx.image), ctx.target)
    status = resources.warm_status(key)
    left, right = st.columns([1, 3])
    if left.button("Warm all methods", key="warm_all", help="Compute every method for this cell in the background."):
        resources.warm(key, warm_jobs(ctx, resources.explanation_cache()))
        status = "running"
    if status:
        right.caption(f"Background precomputation for this cell: {status}")


def warm_requests(methods=None) -> list:
    """``[(method, params)]`` for the Compare set with the parameters on screen.

    Read here, in the page's thread: a worker thread has no session state, so reading it
    there would silently warm the defaults instead of what the pages will ask for.
    """
    methods = [m for m, _ in ev.COMPARE] if methods is None else methods
    return [(m, ev.current_params(m)) for m in methods] + [("feature_maps", ev.current_params("feature_maps"))]


def warm_jobs(ctx, cache) -> list:
    """Callables for the worker: each computes one method with parameters fixed now."""
    return [lambda m=m, p=p: compute(m, ctx.loaded, ctx.image[None], ctx.target, params=p, cache=cache)
            for m, p in warm_requests()]
