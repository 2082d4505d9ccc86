"""The Annotate page's parts: reading widgets, the drawing canvas, autosave, navigation."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from PIL import Image

from core.annotations.canvas import annotation_to_canvas, canvas_to_shapes, display_size_for
from core.annotations.schema import (
    STATE_COLOURS,
    ChromatinState,
    Condition,
    CytoplasmState,
    Graded,
    LobeState,
    blank_annotation,
)
from core.errors import DisplasiaError
from core.preprocess import image_hash
from ui import auth, resources, saving, state
from ui.display import digest_of
from ui.widgets import plain

ANNOTATOR = "annotator_name"
CANVAS_PX = 360                  # canvas side at zoom 1 (the image at 1:1): canvas and score panel fit 1440 x 900
GENERATION = "canvas_generation"
LOBE_LABELS = {"hyposegmented": "hyposegmented (<3)", "normal": "normal (3-5)", "hypersegmented": "hypersegmented (>5)"}


def annotator() -> str | None:
    """The logged-in identity (login on), else a typed, unverified name; None: may not annotate."""
    if auth.mode() != "none":
        identity = auth.current()
        if identity is None or not auth.may("annotate"):
            st.info("Your role can view cells and maps but not annotate.")
            return None
        st.caption(f"Annotating as {auth.plain(identity.name)} (logged in)")
        return identity.name
    if not st.session_state.get(ANNOTATOR):
        # Also when the key exists but is empty: a reload can reattach this browser tab to its
        # old server session with the widget reset to '' (seen in 2 of 5 browser runs); the
        # name then comes back from the cookie, which the new connection carries.
        st.session_state[ANNOTATOR] = _remembered_name()
    name = st.text_input("Annotator", key=ANNOTATOR, placeholder="your name or initials", max_chars=80,
                         help="Each annotator's readings are kept apart; nobody overwrites anybody. "
                              "Without login the name is self-declared and exports mark it unverified. "
                              "This browser remembers it.")
    name = name.strip()
    if name and name != _remembered_name():
        _remember_name(name)
    return name or None


NAME_COOKIE = "displasia_annotator"


def _remembered_name() -> str:
    """The annotator name this browser used last (a cookie), or ''."""
    try:
        value = st.context.cookies.get(NAME_COOKIE, "")
    except Exception:  # noqa: BLE001 - no browser or no cookies: nothing remembered
        return ""
    return value[:80] if isinstance(value, str) else ""


def _remember_name(name: str) -> None:
    """Store the name in a cookie of this site for a year (read back by :func:`_remembered_name`)."""
    import json

    value = json.dumps(name).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    st.html(f"<script>document.cookie = '{NAME_COOKIE}=' + encodeURIComponent({value}) + "
            "'; max-age=31536000; path=/; SameSite=Strict';</script>", unsafe_allow_javascript=True)


def legend() -> None:
    """What the outline colours mean (the colour is the state chosen when the outline was drawn)."""
    # Only constants go into this HTML (the four states and their colours), nothing from files or users.
    items = "".join(
        f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{colour};border-radius:2px;'
        f'margin:0 0.3em 0 0.9em;vertical-align:-0.1em"></span>'
        f'{"cytoplasm" if isinstance(state_, CytoplasmState) else "chromatin"} {state_.value}'
        for state_, colour in STATE_COLOURS.items())
    st.markdown(f'<div style="font-size:0.85em">Outline colours:{items}</div>', unsafe_allow_html=True)


def shortcuts() -> None:
    """Keyboard shortcuts n / p / u click Next, Previous and Next unannotated (not while typing)."""
    st.html("""<script>
const doc = document;
if (!doc.getElementById('displasia-keys')) {
  const s = doc.createElement('script');
  s.id = 'displasia-keys';
  s.textContent = `document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !location.pathname.endsWith('/annotate')) return;
    const t = e.target; const tag = (t && t.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || (t && t.isContentEditable)) return;
    const labels = {n: 'Next', p: 'Previous', u: 'Next unannotated'};
    const want = labels[e.key]; if (!want) return;
    const button = Array.from(document.querySelectorAll('button')).find(
      b => b.innerText.replace(/[^A-Za-z ]/g, '').trim() === want && !b.disabled);
    if (button) { e.preventDefault(); button.click(); }
  });`;
  doc.head.appendChild(s);
}
</script>""", unsafe_allow_javascript=True)


def starting_reading(cell, rgb, name: str):
    """The latest saved reading of this annotator, else a blank one."""
    sha = image_hash(Path(cell.path))
    try:
        saving.flush()
        saved = resources.annotation_store().latest(sha, name)
    except DisplasiaError as exc:      # database down: continue from the edit kept in the session
        st.warning(f"Annotations cannot be read now: {plain(exc)}")
        saved = None
    kept = saving.pending_reading(sha, name)
    if kept is not None:
        return kept, False
    if saved is not None:
        return saved, True
    size = (int(rgb.shape[1]), int(rgb.shape[0]))
    return blank_annotation(Path(cell.path).name, sha, name, size), False


def reading_widgets(start, key: str) -> dict:
    """Cytoplasm, chromatin, lobes and condition, seeded from ``start``."""
    cols = st.columns(2)
    with cols[0]:
        cyto_state = st.radio("Cytoplasm", [s.value for s in CytoplasmState], key=f"cyto_state:{key}",
                              index=[s.value for s in CytoplasmState].index(start.cytoplasm.state.value), horizontal=True)
        cyto_degree = st.slider("Cytoplasm degree", 0, 3, start.cytoplasm.degree, key=f"cyto_degree:{key}")
        lobes = st.radio("Lobes", [s.value for s in LobeState], key=f"lobes:{key}", format_func=LOBE_LABELS.get,
                         index=[s.value for s in LobeState].index(start.lobes.value))
    with cols[1]:
        chroma_state = st.radio("Chromatin", [s.value for s in ChromatinState], key=f"chroma_state:{key}",
                                index=[s.value for s in ChromatinState].index(start.chromatin.state.value), horizontal=True)
        chroma_degree = st.slider("Chromatin degree", 0, 3, start.chromatin.degree, key=f"chroma_degree:{key}")
        condition = st.radio("Cell condition", [s.value for s in Condition], key=f"condition:{key}",
                             index=[s.value for s in Condition].index(start.condition.value), horizontal=True)
    note = st.text_area("Note", start.note, key=f"note:{key}", max_chars=4000, height=68)
    return {"cytoplasm": Graded(CytoplasmState(cyto_state), cyto_degree),
            "chromatin": Graded(ChromatinState(chroma_state), chroma_degree),
            "lobes": LobeState(lobes), "condition": Condition(condition), "note": note}


@st.cache_resource(show_spinner=False, max_entries=64)
def _background_png(image_digest: str, display: tuple, _rgb) -> bytes:
    """The canvas background, resized and PNG-encoded once per image and size (encoding it
    on every rerun was a third of the page's time; the canvas caches the bytes' data URL)."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(_rgb).resize(display, Image.Resampling.LANCZOS).convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def canvas(start, rgb, choices: dict, key: str):
    """The drawing canvas; returns the outlines drawn, in original-image pixels."""
    from streamlit_drawable_canvas import st_canvas  # only importable inside a running app

    tools = st.columns([2, 2, 1, 1])
    region = tools[0].radio("Outline", ["cell (cytoplasm)", "nucleus"], horizontal=True, key="draw_region")
    mode = tools[1].radio("Tool", ["freedraw", "polygon"], horizontal=True, key="draw_mode",
                          help="Polygon: click the vertices, click the first one again to close.")
    width = tools[2].slider("Brush", 1, 8, 2, key="draw_width")
    zoom = tools[3].selectbox("Zoom", [1.0, 1.5, 2.0], key="draw_zoom", format_func=lambda z: f"{z:g}×")
    colour = (STATE_COLOURS[choices["cytoplasm"].state] if region.startswith("cell")
              else STATE_COLOURS[choices["chromatin"].state])
    display = display_size_for(start.image_size, int(CANVAS_PX * zoom))
    background = _background_png(digest_of(rgb), tuple(display), rgb)
    generation = st.session_state.get(GENERATION, 0)
    result = st_canvas(fill_color="rgba(0, 0, 0, 0)", stroke_width=width, stroke_color=colour,
                       background_image=background, width=display[0], height=display[1], drawing_mode=mode,
                       initial_drawing=annotation_to_canvas(start, display_size=display, stroke_width=2),
                       key=f"canvas:{key}:{generation}:{zoom}")
    if result.json_data is None:
        return list(start.shapes)
    drawn = canvas_to_shapes(result.json_data, display_size=display, image_size=start.image_size)
    # The canvas hands back the initial outlines re-rounded at display scale; keep the stored
    # points then, so merely viewing a cell never creates a new version.
    return list(start.shapes) if same_outlines(drawn, start.shapes, tolerance=1.5 / zoom) else drawn


def same_outlines(a, b, *, tolerance: float) -> bool:
    import numpy as np

    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.label != y.label or len(x.points) != len(y.points):
            return False
        if np.abs(np.asarray(x.points) - np.asarray(y.points)).max(initial=0.0) > tolerance:
            return False
    return True


def autosave(start, saved_before: bool, reading) -> None:
    """Store a new version whenever the reading differs from the last stored one."""
    unchanged = reading.with_updates(updated=None).to_json() == start.with_updates(updated=None).to_json()
    if unchanged and (saved_before or not reading.shapes):
        if saved_before:
            st.caption(f"Saved · last version {start.updated}")
        return
    try:
        version = saving.save(reading)
    except DisplasiaError as exc:
        st.error(plain(str(exc)))
        return
    if version is not None:
        st.caption(f"Saved automatically · version {version}")


def score_panel(reading) -> None:
    scores = reading.scores
    top, bottom = st.columns(2), st.columns(2)          # 2 x 2: labels are never cut in the narrow column
    top[0].metric("Cytoplasm S_g", f"{scores.cytoplasm:+d}")
    top[1].metric("Chromatin S_c", f"{scores.chromatin:+d}")
    bottom[0].metric("Lobes S_l", f"{scores.lobes:+d}")
    bottom[1].metric("Total S_t", f"{reading.total:+d}")
    if reading.disagrees:
        reads = "dysplastic" if reading.total >= 1 else "normal"
        st.warning(f"The total {reading.total:+d} reads {reads}, but the condition chosen is {reading.condition.value}.")


def navigation(names: list[str], current: str, name: str) -> None:
    """Previous / next / next cell this annotator has not read yet."""
    index = names.index(current) if current in names else 0
    cols = st.columns(3)
    target = None
    if cols[0].button("◀ Previous", key="ann_prev", disabled=index == 0, help="Shortcut: p"):
        target = names[index - 1]
    if cols[1].button("Next ▶", key="ann_next", disabled=index >= len(names) - 1, help="Shortcut: n"):
        target = names[index + 1]
    if cols[2].button("Next unannotated", key="ann_next_free", icon=":material/skip_next:", help="Shortcut: u"):
        done = _annotated_by(name)
        todo = [n for n in names[index + 1:] + names[:index] if n not in done]
        if todo:
            target = todo[0]
        else:
            st.info("Every cell of this dataset has your annotation.")
    if target:
        st.session_state[state.CELL] = target
        st.rerun()


def _annotated_by(name: str) -> set:
    store = resources.annotation_store()
    return {a.image for a in store.all_latest() if a.annotator == name}


def agreement(cell) -> None:
    from core.annotations.agreement import image_agreement

    try:
        readings = resources.annotation_store().latest_for_image(image_hash(Path(cell.path)))
    except DisplasiaError:
        return                         # database down: the warning above already says so
    if len(readings) > 1:
        st.subheader("Agreement between annotators")
        st.dataframe(pd.DataFrame(image_agreement(readings)), hide_index=True)
    elif readings:
        st.caption(f"Annotated by: {plain(', '.join(sorted(readings)))}")
