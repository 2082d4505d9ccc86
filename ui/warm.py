"""Background computation: 'warm all methods' on request, and prefetch of the current cell.

Prefetch: when a cell becomes current (or the model, target or interpolation changes), the
Compare set with the parameters on screen is computed in one background thread, cheapest
method first (by the time each method took here before; unknown ones by family), then the
same for the gallery neighbours, until the ``prefetch.cpu_seconds`` setting is spent. A newer
current cell cancels the older plan between two batches. Between batches the plan also
stands aside while any page is being drawn (:mod:`ui.foreground`). Results go to the disk
cache.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from core.config import DEFAULT_THRESHOLD
from core.explain import compute
from core.preprocess import image_hash
from ui import explain_view as ev
from ui import foreground, resources


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


# ------------------------------------------------------------------ prefetch

#: Order of method families when a method's cost was never measured here (cheapest first).
FAMILY_ORDER = ("cam", "activation", "gradient", "perturbation")
NEIGHBOURS = 2                       # cells on each side of the current one, in gallery order
START_DELAY_S = 2.0

_lock = threading.Lock()
_pool = None
_seconds: dict = {}                  # method -> last measured wall seconds for one cell


@dataclass
class PrefetchPlan:
    """One prefetch request, shared with the worker; ``done`` lists (cell, method) computed."""

    key: tuple
    cells: list                      # [(name, path)], the current cell first
    requests: list                   # [(method, params)] captured in the page thread
    target: str
    interpolation: str
    budget_s: float
    threshold: float = DEFAULT_THRESHOLD   # for target "predicted", resolved per cell
    cancelled: bool = False
    done: list = field(default_factory=list)
    cpu_s: float = 0.0
    waited_s: float = 0.0            # seconds spent standing aside for page runs (ui.foreground)
    finished: bool = False
    error: str | None = None


_plan: PrefetchPlan | None = None


def cheapest_first(requests) -> list:
    """``requests`` ordered by measured seconds, unmeasured ones by family (FAMILY_ORDER)."""
    from core.explain import get_method

    def cost(item):
        method = item[0]
        if method in _seconds:
            return (0, _seconds[method])
        family = get_method(method).family
        return (1, FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER))

    return sorted(requests, key=cost)


def neighbours(names: list, current: str, n: int = NEIGHBOURS) -> list:
    """The current cell, then its neighbours nearest first, alternating after / before.

    >>> neighbours(list("abcdef"), "c")
    ['c', 'd', 'b', 'e', 'a']
    """
    if current not in names:
        return []
    i = names.index(current)
    out = [current]
    for step in range(1, n + 1):
        out += [names[j] for j in (i + step, i - step) if 0 <= j < len(names)]
    return out


def prefetch(choice, cells: list, current: str, target: str, interpolation: str, *,
             threshold: float = DEFAULT_THRESHOLD) -> PrefetchPlan | None:
    """Start prefetching for ``current`` unless the same plan is already running or done.

    ``cells`` are the dataset's cells (``name``, ``path``) in gallery order. Reads the
    on-screen parameters here, in the page thread; everything else happens in the worker.
    """
    global _plan, _pool
    from concurrent.futures import ThreadPoolExecutor

    from core.settings import load_settings

    budget = load_settings().prefetch.cpu_seconds
    if budget <= 0 or not cells:
        return None
    key = (choice.path, choice.weights, current, target, interpolation, threshold)
    with _lock:
        if _plan is not None and _plan.key == key:
            return _plan
        if _plan is not None:
            _plan.cancelled = True               # the user moved on: stop the old plan between batches
        paths = {c.name: str(c.path) for c in cells}
        order = neighbours(list(paths), current)
        plan = _plan = PrefetchPlan(key, [(n, paths[n]) for n in order], warm_requests(), target, interpolation, budget,
                                   threshold=threshold)
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
    _pool.submit(_run, choice, plan, resources.explanation_cache())
    return plan


def _run(choice, plan: PrefetchPlan, cache) -> None:
    from core.cache import others_waiting
    from core.errors import DisplasiaError
    from core.explain import cache_key
    from core.explain.base import Cancelled, resolve_target
    from core.predict import predict_scores
    from core.preprocess import load_rgb, to_model_input

    time.sleep(START_DELAY_S)                    # the page that made the cell current renders first
    if "tensorflow" not in sys.modules:          # nothing has needed the model yet: not before the gallery is drawn
        resources._page_drawn.wait(timeout=resources.WARMUP_DELAY_S)
    start = time.process_time()
    others = 0.0                                 # process CPU spent while this plan stood aside
    holding = None                               # cache key being computed (single flight)

    def needed() -> bool:
        """A page waits for the map being computed: go on at once (it would wait for us)."""
        return plan.cancelled or (holding is not None and others_waiting(holding))

    def stop() -> bool:
        nonlocal others
        before = time.process_time()
        plan.waited_s += foreground.wait_for_quiet(needed)   # a page is being drawn: stand aside
        others += time.process_time() - before
        plan.cpu_s = time.process_time() - start - others
        return plan.cancelled or plan.cpu_s > plan.budget_s

    try:
        if stop():
            return
        loaded = resources.loaded_model(choice)
        for name, path in plan.cells:
            image = to_model_input(load_rgb(path), loaded.description.image_size, plan.interpolation)
            target = plan.target
            if target == "predicted":
                target = resolve_target(target, float(predict_scores(loaded, image[None])[0]), plan.threshold)
            for method, params in cheapest_first(plan.requests):
                if stop():
                    return
                began, waited = time.perf_counter(), plan.waited_s
                try:
                    key = cache_key(loaded, image[None], method, target, params)
                    if cache.get(key) is None:
                        holding = key
                        compute(method, loaded, image[None], target, params=params, cache=cache, cancel=stop)
                        _seconds[method] = time.perf_counter() - began - (plan.waited_s - waited)
                except Cancelled:
                    return
                except DisplasiaError:
                    continue                     # e.g. a parameter this model cannot take: the page will say so
                finally:
                    holding = None
                plan.done.append((name, method))
    except Exception as exc:  # noqa: BLE001 - prefetch is best effort; the page computes what is missing
        plan.error = f"{type(exc).__name__}: {exc}"
    finally:
        plan.cpu_s = time.process_time() - start - others
        plan.finished = True


def prefetch_status(plan: PrefetchPlan | None) -> str | None:
    """One line for the sidebar, or None when there is nothing to say."""
    if plan is None:
        return None
    total = len(plan.cells) * len(plan.requests)
    if plan.finished:
        return f"Prefetched {len(plan.done)} of {total} maps ({plan.cpu_s:.0f} CPU s)"
    return f"Prefetching maps in the background: {len(plan.done)} of {total}"
