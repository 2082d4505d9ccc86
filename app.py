"""DisplasiaNet explainer: router and shared sidebar. Run: streamlit run app.py"""
import streamlit as st

from ui import resources, sidebar

st.set_page_config(page_title="DisplasiaNet explainer", page_icon=":material/biotech:", layout="wide")
resources.start_tensorflow_warmup()

PAGES = {
    "Cells": [
        st.Page("pages/home.py", title="Gallery", icon=":material/grid_view:", url_path="home", default=True),
        st.Page("pages/model.py", title="Model", icon=":material/memory:", url_path="model"),
        st.Page("pages/annotate.py", title="Annotate", icon=":material/draw:", url_path="annotate"),
    ],
    "Explain": [
        st.Page("pages/compare.py", title="Compare", icon=":material/view_module:", url_path="compare"),
        st.Page("pages/feature_maps.py", title="Feature maps", icon=":material/layers:", url_path="feature-maps"),
        st.Page("pages/saliency.py", title="Saliency", icon=":material/gradient:", url_path="saliency"),
        st.Page("pages/occlusion.py", title="Occlusion", icon=":material/select:", url_path="occlusion"),
        st.Page("pages/lime.py", title="LIME", icon=":material/texture:", url_path="lime"),
        st.Page("pages/cams.py", title="CAMs", icon=":material/thermostat:", url_path="cams"),
        st.Page("pages/background.py", title="Background test", icon=":material/wallpaper:", url_path="background"),
        st.Page("pages/projection.py", title="Projection", icon=":material/scatter_plot:", url_path="projection"),
    ],
    "Evidence": [
        st.Page("pages/summary.py", title="Summary", icon=":material/summarize:", url_path="summary"),
    ],
}

navigation = st.navigation(PAGES)
sidebar.render()
navigation.run()
