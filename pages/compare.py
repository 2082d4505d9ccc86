"""Compare: every method on the current cell in one grid, one colour scale per method family."""
import streamlit as st

from ui import compare_view, context
from ui import explain_view as ev
from ui.warm import warm_all

st.title("Compare methods")
ctx = context.current_cell()
context.cell_header(ctx)
warm_all(ctx)
compare_view.grid(ctx, [method for method, _ in ev.COMPARE], ev.current_params)
