"""The sidebar every page shares: model, dataset, current cell, class to explain."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from core.config import INTERPOLATIONS, data_roots, default_dataset
from core.errors import DisplasiaError
from ui import resources, state

_UPLOAD_KEY = "upload_dir"


def is_allowed_folder(path: Path) -> bool:
    """True when ``path`` is below a configured data root or this session's upload folder."""
    try:
        resolved = path.resolve()
    except OSError:
        return False
    roots = data_roots() + [Path(st.session_state[_UPLOAD_KEY]).resolve()] if _UPLOAD_KEY in st.session_state else data_roots()
    return any(resolved == root or root in resolved.parents for root in roots)


def _session_upload_dir() -> Path:
    # Private to this session, deleted when it ends; stale ones are swept at start-up (ui.uploads).
    from ui.uploads import session_folder

    path = session_folder()
    st.session_state[_UPLOAD_KEY] = str(path)
    return path


def _save_upload(upload, folder: Path) -> Path:
    # Never trust the browser's file name as a path (ui.uploads keeps one harmless component).
    from ui.uploads import save

    return save(upload, folder)


def discovered_models() -> list[resources.ModelChoice]:
    """Model files below the data roots: .keras, full .h5, and .json with its weights."""
    found = [state.default_model()]
    for root in data_roots():
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.keras")):
            found.append(resources.ModelChoice(f"{path.relative_to(root)}", str(path)))
        for path in sorted(root.rglob("*.json")):
            weights = next((w for w in (path.with_name(path.stem + "_weights.h5"), path.with_suffix(".h5"))
                            if w.is_file()), None)
            if weights:
                found.append(resources.ModelChoice(f"{path.relative_to(root)} + {weights.name}", str(path), str(weights)))
    unique = {}
    for choice in found:
        unique.setdefault((choice.path, choice.weights), choice)
    return list(unique.values())


def _model_picker() -> None:
    ss = st.session_state
    options = discovered_models() + ss.get("uploaded_models", [])
    labels = [o.label for o in options]
    current = ss[state.MODEL]
    index = next((i for i, o in enumerate(options) if o == current), 0)
    chosen = st.selectbox("Model", labels, index=index, key="model_label")
    ss[state.MODEL] = options[labels.index(chosen)]
    with st.expander("Use your own model"):
        files = st.file_uploader("Model file(s): .keras, .h5, or .json + weights .h5",
                                 type=["keras", "h5", "json"], accept_multiple_files=True, key="model_upload")
        if files and st.button("Use uploaded model", key="use_uploaded_model"):
            folder = _session_upload_dir() / ("model-" + hashlib.sha256(b"".join(f.getvalue()[:4096] for f in files)).hexdigest()[:12])
            saved = [_save_upload(f, folder) for f in files]
            arch = next((p for p in saved if p.suffix in (".json", ".keras")), None) or saved[0]
            weights = next((p for p in saved if p.suffix == ".h5" and p != arch), None) if arch.suffix == ".json" else None
            choice = resources.ModelChoice(f"uploaded: {arch.name}", str(arch), str(weights) if weights else None)
            ss.setdefault("uploaded_models", []).append(choice)
            ss[state.MODEL] = choice
            ss.pop("model_label", None)
            st.rerun()


def _dataset_picker() -> None:
    ss = st.session_state
    with st.expander("Dataset", expanded=False):
        st.caption(f"Current: `{ss[state.DATASET]}`")
        folder = st.text_input("Image folder on the server", placeholder=str(default_dataset()), key="dataset_input")
        if st.button("Open folder", key="open_folder") and folder:
            path = Path(folder).expanduser()
            if not is_allowed_folder(path):
                st.error("That folder is outside the folders this server shares (DISPLASIA_DATA_ROOTS).")
            elif not path.is_dir():
                st.error(f"Folder not found: {folder}")
            else:
                ss[state.DATASET], ss[state.CELL] = str(path), None
                st.rerun()
        uploads = st.file_uploader("…or upload cell images", type=["jpg", "jpeg", "png", "tif", "tiff", "bmp"],
                                   accept_multiple_files=True, key="image_upload")
        if uploads and st.button("Open uploaded images", key="open_uploads"):
            folder = _session_upload_dir() / "images"
            for upload in uploads:
                _save_upload(upload, folder)
            ss[state.DATASET], ss[state.CELL] = str(folder), None
            st.rerun()
        if st.button("Back to the demo cells", key="demo_dataset"):
            ss[state.DATASET], ss[state.CELL] = str(default_dataset()), None
            st.rerun()


def render() -> None:
    """Draw the shared sidebar and keep the selection (and the URL) consistent."""
    ss = st.session_state
    state.init()
    with st.sidebar:
        st.markdown("### DisplasiaNet explainer")
        _model_picker()
        _dataset_picker()
        try:
            ds = resources.dataset(ss[state.DATASET], resources.dataset_stamp(ss[state.DATASET]))
        except DisplasiaError as exc:
            st.error(str(exc))
            ss[state.DATASET] = str(default_dataset())
            return
        names = ds.names()
        if ss.get(state.CELL) not in names:
            ss[state.CELL] = names[0]
        ss["cell_select"] = ss[state.CELL]
        st.selectbox("Current cell", names, key="cell_select",
                     on_change=lambda: ss.__setitem__(state.CELL, ss["cell_select"]))
        ss["target_select"] = ss[state.TARGET]
        st.radio("Explain the class", state.TARGETS, key="target_select", horizontal=True,
                 on_change=lambda: ss.__setitem__(state.TARGET, ss["target_select"]))
        ss["threshold_select"] = ss[state.THRESHOLD]
        st.number_input("Decision threshold (score < threshold → dysplastic)", 0.001, 0.999, step=0.001,
                        format="%.3f", key="threshold_select",
                        on_change=lambda: ss.__setitem__(state.THRESHOLD, ss["threshold_select"]))
        ss["interp_select"] = ss[state.INTERPOLATION]
        st.selectbox("Resize interpolation", INTERPOLATIONS, key="interp_select",
                     help="DisplasiaNet was trained on nearest-neighbour resized images.",
                     on_change=lambda: ss.__setitem__(state.INTERPOLATION, ss["interp_select"]))
    state.sync_query_params()
