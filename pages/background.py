"""Background test: does the score change when everything outside the cell is one colour?"""
import streamlit as st

from core.io_utils import frame_csv_bytes
from core.preprocess import resize_mask
from ui import background, context, display, map_image, resources, state
from ui import explain_view as ev
from ui.widgets import plain

st.title("Background test")
ctx = context.current_cell()
context.cell_header(ctx)
regions = resources.regions(str(ctx.cell.path), ctx.rgb)
st.caption(f"Cell outline from: **{plain(regions.source)}**. Scores are P(normal).")
mask = resize_mask(regions.cell, ctx.loaded.description.image_size)
exp = ev.explanation("background", ctx.loaded, ctx.image, ctx.target, {}, cell_mask=mask)
if exp:
    original, masked = float(exp.extras["original_score"][0]), float(exp.extras["masked_score"][0])
    left, right = st.columns(2)
    with left:
        map_image.show(display.image_picture(ctx.image, title=f"original · P(normal) {original:.4f}"),
                       key="bg_original")
    with right:
        map_image.show(display.image_picture(exp.extras["masked_images"][0],
                                             title=f"background replaced · P(normal) {masked:.4f}"), key="bg_masked")
    st.metric("Score change", f"{masked - original:+.4f}")
    ev.cache_note("background")
st.subheader("Whole dataset")
if st.toggle("Run the background test on every cell", key="bg_all"):
    table = background.dataset_table(context.dataset_view(), ctx.target, state.selection().interpolation)
    if not table.empty:
        st.dataframe(background.group_summary(table), hide_index=True)
        st.dataframe(table, hide_index=True)
        st.download_button("Background test CSV", frame_csv_bytes(table), "background_test.csv", "text/csv",
                           key="bg_csv")
