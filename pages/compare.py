"""Compare: every method on the current cell in one grid, with the same display options."""
import streamlit as st

from core.explain import get_method
from ui import context, display, explain_view as ev, resources
from ui.warm import warm_all

st.title("Compare methods")
ctx = context.current_cell()
context.cell_header(ctx)
options = display.options_widget()
warm_all(ctx)
columns = st.columns(4)
for i, (method, page) in enumerate(ev.COMPARE):
    with columns[i % 4]:
        exp = ev.explanation(method, ctx.loaded, ctx.image, ctx.target, ev.current_params(method), label=get_method(method).title)
        if exp:
            ev.show_map(exp, ctx.rgb, options, title=get_method(method).title, height=260, max_side=150, key=f"cmp_{method}")
        st.page_link(page, label=f"Open {get_method(method).title}", icon=":material/open_in_new:")
with columns[len(ev.COMPARE) % 4]:
    st.plotly_chart(display.image_figure(ctx.rgb, title="cell", height=260), key="cmp_cell")
