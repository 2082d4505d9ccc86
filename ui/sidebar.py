"""The sidebar every page shares: model, dataset, current cell, class to explain."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from core.config import INTERPOLATIONS, data_roots, default_dataset
from core.errors import DisplasiaError
from ui import auth, models, resources, state, warm
from ui.widgets import plain

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
    """Every model the picker offers (see ``ui.models.available``), each once."""
    return list(models.available().values())


def _model_picker() -> None:
    ss = st.session_state
    options = models.available()
    current = ss[state.MODEL]
    if current.kind == "uploaded":
        models.remember_upload(current)       # listed in this session, and a shared link to it works
    current_key = models.key_of(current)
    if current_key is not None and current_key not in options:
        options[current_key] = current          # e.g. opened from a shared link: keep it listed
    keys = list(options)
    ss["model_select"] = current_key if current_key in options else keys[0]

    def _picked():
        state.set_model(options[ss["model_select"]])

    st.selectbox("Model", keys, key="model_select", format_func=lambda k: options[k].label, on_change=_picked,
                 help="The model every page uses; it stays chosen until you pick another and travels in the URL.")
    if ss.get(state.MODEL_NOTICE):
        st.warning(plain(ss[state.MODEL_NOTICE]))
    if not auth.may("upload_model"):
        return
    with st.expander("Use your own model"):
        files = st.file_uploader("Model file(s): .keras, .h5, or .json + weights .h5",
                                 type=["keras", "h5", "json"], accept_multiple_files=True, key="model_upload")
        if files and st.button("Use uploaded model", key="use_uploaded_model"):
            folder = _session_upload_dir() / ("model-" + hashlib.sha256(b"".join(f.getvalue()[:4096] for f in files)).hexdigest()[:12])
            saved = [_save_upload(f, folder) for f in files]
            arch = next((p for p in saved if p.suffix in (".json", ".keras")), None) or saved[0]
            weights = next((p for p in saved if p.suffix == ".h5" and p != arch), None) if arch.suffix == ".json" else None
            label = f"Uploaded: {arch.name}" + (f" + {weights.name}" if weights else "")
            choice = resources.ModelChoice(label, str(arch), str(weights) if weights else None, "uploaded")
            try:
                models.remember_upload(choice)
            except DisplasiaError as exc:
                st.error(plain(str(exc)))
                return
            auth.audit("model_uploaded", detail=[p.name for p in saved])
            state.set_model(choice)
            st.rerun()


_SIDE_FOLDERS = {"truth", "masks", "annotations", "exports", "overlays", "thumbs"}


@st.cache_data(ttl=60, show_spinner=False)
def dataset_folders(roots: tuple, limit: int = 300) -> list[str]:
    """Folders below the data roots that hold cell images (directly or in class subfolders)."""
    import os

    from core.config import IMAGE_SUFFIXES
    from core.datasets import FOLDER_CLASSES

    def has_images(folder: str) -> bool:
        try:
            with os.scandir(folder) as entries:       # file types come with the listing: no stat per file
                return any(e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file() for e in entries)
        except OSError:
            return False

    found = []
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        folders = []
        for here, subfolders, _ in os.walk(root):
            depth = len(Path(here).relative_to(root).parts)
            subfolders[:] = [d for d in subfolders if not d.startswith(".")] if depth < 4 else []
            folders.append(Path(here))
        for folder in [root, *sorted(folders[1:])]:
            if len(found) >= limit:
                break
            if folder.name.lower() in FOLDER_CLASSES or folder.name.lower() in _SIDE_FOLDERS:
                continue                           # class subfolders belong to their dataset; masks are not cells
            inside = [folder] + [folder / c for c in FOLDER_CLASSES if (folder / c).is_dir()]
            if any(has_images(str(d)) for d in inside):
                found.append(str(folder))
    return found


def _open(folder) -> None:
    state.set_dataset(str(folder))
    st.rerun()


def _dataset_picker() -> None:
    ss = st.session_state
    folders = dataset_folders(tuple(str(r) for r in data_roots()))
    current = ss[state.DATASET]
    options = folders + ([current] if current not in folders else [])
    ss["dataset_select"] = current

    def _picked():
        state.set_dataset(ss["dataset_select"])

    st.selectbox("Dataset", options, key="dataset_select", on_change=_picked, format_func=_folder_label,
                 help="Folders with cell images below the server's data folders (setting data.roots).")
    with st.expander("Other folder or upload", expanded=False):
        folder = st.text_input("Image folder on the server", placeholder=str(default_dataset()), key="dataset_input")
        if st.button("Open folder", key="open_folder") and folder:
            path = Path(folder).expanduser()
            if not is_allowed_folder(path):
                st.error("That folder is outside the folders this server shares: "
                         + ", ".join(str(r) for r in data_roots()) + ".")
            elif not path.is_dir():
                st.error(f"Folder not found: {plain(folder)}")
            else:
                _open(path)
        uploads = st.file_uploader("…or upload cell images, or one .zip of images with an optional labels.csv",
                                   type=["jpg", "jpeg", "png", "tif", "tiff", "bmp", "zip"],
                                   accept_multiple_files=True, key="image_upload")
        if uploads and st.button("Open uploaded images", key="open_uploads"):
            from core.dataset_zip import extract_dataset_zip, upload_limits

            folder = _session_upload_dir() / ("images-" + hashlib.sha256(
                b"".join(u.name.encode() + u.getvalue()[:4096] for u in uploads)).hexdigest()[:12])
            try:
                for upload in uploads:
                    if Path(upload.name).suffix.lower() == ".zip":
                        extract_dataset_zip(upload.getvalue(), folder, **upload_limits())
                    else:
                        _save_upload(upload, folder)
            except DisplasiaError as exc:
                st.error(plain(str(exc)))
                return
            _open(folder)
        if st.button("Back to the demo cells", key="demo_dataset"):
            _open(default_dataset())


def _folder_label(folder: str) -> str:
    path = Path(folder)
    for root in data_roots():
        if path == root or root in path.parents:
            return f"{root.name}/{path.relative_to(root)}".rstrip("/.") if path != root else f"{root.name}/"
    return f"uploaded: {path.name}" if _UPLOAD_KEY in st.session_state and str(path).startswith(
        st.session_state[_UPLOAD_KEY]) else path.name


LONG_LIST = 1000                  # more cells than this: type a name instead of a 20,000-entry list


def _cell_picker(ds) -> None:
    ss = st.session_state
    names = ds.names()
    if ss.get(state.CELL) not in names:
        ss[state.CELL] = names[0]
    ss["cell_select"] = ss[state.CELL]
    if len(names) <= LONG_LIST:
        st.selectbox("Current cell", names, key="cell_select",
                     on_change=lambda: ss.__setitem__(state.CELL, ss["cell_select"]))
        return
    known = set(names)

    def _typed():
        if ss["cell_select"] in known:
            ss[state.CELL] = ss["cell_select"]

    st.text_input("Current cell", key="cell_select", on_change=_typed,
                  help=f"{len(names):,} cells: type a name, or pick one in the gallery.")


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
            st.error(plain(str(exc)))
            state.set_dataset(str(default_dataset()))
            return
        _cell_picker(ds)
        ss["target_select"] = ss[state.TARGET]
        st.radio("Explain the class", state.TARGET_CHOICES, key="target_select", horizontal=True,
                 format_func=lambda t: "predicted" if t == "predicted" else t,
                 help="predicted: the class the model gives this cell at the threshold (why did it say that?)",
                 on_change=lambda: ss.__setitem__(state.TARGET, ss["target_select"]))
        ss["threshold_select"] = ss[state.THRESHOLD]
        st.number_input("Decision threshold (score < threshold → dysplastic)", 0.001, 0.999, step=0.001,
                        format="%.3f", key="threshold_select",
                        on_change=lambda: ss.__setitem__(state.THRESHOLD, ss["threshold_select"]))
        ss["interp_select"] = ss[state.INTERPOLATION]
        st.selectbox("Resize interpolation", INTERPOLATIONS, key="interp_select",
                     help="DisplasiaNet was trained on nearest-neighbour resized images.",
                     on_change=lambda: ss.__setitem__(state.INTERPOLATION, ss["interp_select"]))
        plan = warm.prefetch(ss[state.MODEL], ds.cells, ss[state.CELL],
                             ss[state.TARGET], ss[state.INTERPOLATION], threshold=ss[state.THRESHOLD])
        if (status := warm.prefetch_status(plan)) is not None:
            st.caption(status)
    state.sync_query_params()
