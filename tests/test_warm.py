"""'Warm all methods' warms exactly what the pages then ask for, with the parameters on screen.

The warm jobs run in a worker thread, which has no session state: the parameters must be
captured in the page's thread. Regression test for warming the defaults instead.
"""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

#: Non-default settings a user could have on screen (methods missing here keep their defaults).
ON_SCREEN = {"occlusion.patch": 5, "occlusion.fill": "grey", "smoothgrad.samples": 3, "smoothgrad.noise": 0.3,
             "lime.samples": 30, "lime.max_dist": 4.0, "gradcam.evidence": "signed", "scorecam.evidence": "signed"}


def _script():
    """Runs as a Streamlit page: captures on the page thread, computes in a worker thread."""
    import threading
    from types import SimpleNamespace

    import numpy as np
    import streamlit as st

    from core.cache import ExplanationCache
    from core.explain import cache_key
    from core.explain.testing import random_cells, tiny_cnn
    from core.model_io import from_keras
    from ui import explain_view as ev
    from ui.warm import warm_jobs, warm_requests

    loaded = from_keras(tiny_cnn(16, seed=2))
    image = random_cells(1, 16, seed=5)[0]
    ctx = SimpleNamespace(loaded=loaded, image=image, target="dysplastic")
    cache = ExplanationCache(st.session_state["cache_dir"])
    jobs = warm_jobs(ctx, cache)  # as ui.warm.warm_all does: built on the page thread
    worker = threading.Thread(target=lambda: [job() for job in jobs])
    worker.start()
    worker.join()
    # what the method pages then request: their on-screen parameters, read in the page thread
    requested = [cache_key(loaded, image[None], m, ctx.target, ev.current_params(m)) for m, _ in ev.COMPARE]
    st.session_state["hits"] = [cache.get(k) is not None for k in requested]
    st.session_state["warmed_params"] = {m: dict(p) for m, p in warm_requests()}
    defaults = [cache_key(loaded, image[None], m, ctx.target, None) for m in ("occlusion", "smoothgrad")]
    st.session_state["default_hits"] = [cache.get(k) is not None for k in defaults]
    st.write(np.sum(st.session_state["hits"]))


@pytest.mark.slow
def test_warm_all_fills_the_keys_the_pages_request(tmp_path):
    at = AppTest.from_function(_script, default_timeout=300)
    at.session_state["cache_dir"] = str(tmp_path / "cache")
    for key, value in ON_SCREEN.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["hits"] and all(at.session_state["hits"])
    assert at.session_state["warmed_params"]["occlusion"] == {"patch": 5, "fill": "grey"}
    # nothing was warmed with the defaults where the screen says otherwise
    assert at.session_state["default_hits"] == [False, False]
