"""'Warm all methods': fill the disk cache for the current cell in the background."""
from __future__ import annotations

import streamlit as st

from core.explain import compute
from core.preprocess import image_hash
from ui import explain_view as ev, resources


def warm_all(ctx) -> None:
    key = (ctx.loaded.description.content_hash, image_hash(ctx.image), ctx.target)
    status = resources.warm_status(key)
    left, right = st.columns([1, 3])
    if left.button("Warm all methods", key="warm_all", help="Compute every method for this cell in the background."):
        cache = resources.explanation_cache()
        jobs = [lambda m=m: compute(m, ctx.loaded, ctx.image[None], ctx.target, params=ev.current_params(m), cache=cache)
                for m, _ in ev.COMPARE]
        jobs.append(lambda: compute("feature_maps", ctx.loaded, ctx.image[None], ctx.target, cache=cache))
        resources.warm(key, jobs)
        status = "running"
    if status:
        right.caption(f"Background precomputation for this cell: {status}")
