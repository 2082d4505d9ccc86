"""Grids of maps (Compare, CAMs): one row of tiles at a time so tiles line up, one colour
scale per method family and unit so tiles can be compared, and a fragment so that a change
of the display options redraws only the grid."""
from __future__ import annotations

import numpy as np
import streamlit as st

import core.display as cd
from core.explain import get_method
from ui import display, map_image
from ui import explain_view as ev
from ui.widgets import plain


def shared_limits(views: dict, options: cd.DisplayOptions) -> dict:
    """``{(family, units title): peak}`` over the maps that are not flat (zero-centred modes);
    maps in other units never share a scale."""
    limits: dict = {}
    if options.normalisation == "minmax":
        return limits
    for view in views.values():
        if view.assessment.state == "flat" or view.sign == "score":
            continue
        group = (view.family, view.units.title)
        limits[group] = max(limits.get(group, 0.0), cd.peak(view.values, view.sign, options))
    return {group: value for group, value in limits.items() if value > 0}


def group_members(views: dict) -> dict:
    """``{(family, units title): [method titles]}``."""
    members: dict = {}
    for method, view in views.items():
        members.setdefault((view.family, view.units.title), []).append(get_method(method).title)
    return members


@st.fragment
def grid(ctx, methods, params_for, *, columns: int = 4, height: int = 270, max_side: int = 160,
         links: bool = True, downloads: bool = False, cell_tile: bool = True, compact: bool = True,
         key: str = "cmp") -> None:
    """Every method of ``methods`` on the current cell, with the shared display options.

    ``params_for(method)`` gives each method's parameters. Tiles are laid out row by row;
    each has a one-line title, a one-line progress/cache slot, the map (colour bar below it),
    then its notes (one-line captions when ``compact``, boxes otherwise).
    """
    options = display.options_widget()
    rgb = np.asarray(ctx.rgb).view()
    rgb.flags.writeable = False  # one read-only view: its digest is computed once for the whole grid
    names = list(methods) + (["__cell__"] if cell_tile else [])
    tiles = {}
    for start in range(0, len(names), columns):
        for column, method in zip(st.columns(columns), names[start:start + columns]):
            with column:
                if method == "__cell__":
                    st.markdown("**Cell**")
                    st.caption(plain(ctx.cell.name))
                    map_image.show(display.image_picture(rgb, height=height - 40), key=f"{key}_cell")
                    continue
                st.markdown(f"**{get_method(method).title}**")
                tiles[method] = (st.empty(), st.container())
    exps = {}
    for method, (slot, _) in tiles.items():
        exp = ev.explanation(method, ctx.loaded, ctx.image, ctx.target, params_for(method),
                             label=get_method(method).title, slot=slot)
        if exp is not None:
            exps[method] = exp
    views = {m: ev.map_view(exp, options) for m, exp in exps.items()}
    limits, members = shared_limits(views, options), group_members(views)
    for method, exp in exps.items():
        spec = get_method(method)
        group = (views[method].family, views[method].units.title)
        view = ev.map_view(exp, options, limit=limits.get(group))
        with tiles[method][1]:
            ev.show_map(exp, rgb, options, view=view, height=height, max_side=max_side, compact=True,
                        brief=compact, key=f"{key}_{method}")
            shared = [t for t in members[group] if t != spec.title]
            st.caption(_scale_line(view, shared, options))
            if downloads:
                ev.downloads(exp, rgb, options, ctx.cell.path.stem)
            if links and spec.page:
                st.page_link(spec.page, label=f"Open {spec.title}", icon=":material/open_in_new:")


def _scale_line(view, shared: list, options) -> str:
    """'drop in logit of normal when hidden (log-odds): ±0.52, shared with LIME'."""
    scale = view.scale
    if view.assessment.state == "flat":
        return f"{view.units.title}: flat, no scale"
    if options.normalisation == "minmax":
        span = f"stretched {scale.low:.3g} to {scale.high:.3g}"
    elif scale.diverging:
        span = f"±{scale.high:.3g}"
    else:
        span = f"0 to {scale.high:.3g}"
    share = f", shared with {', '.join(shared)}" if shared and options.normalisation != "minmax" else ""
    return f"{view.units.title}: {span}{share}"


def peaks(views: dict) -> dict:
    """Largest |value| of each map (diagnostics, tests)."""
    return {m: float(np.abs(v.values).max()) for m, v in views.items()}
