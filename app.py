"""DisplasiaNet explainer: router and shared sidebar. Run: streamlit run app.py"""
import streamlit as st

from ui import resources, sidebar

st.set_page_config(page_title="DisplasiaNet explainer", page_icon="🔬", layout="wide")
resources.start_tensorflow_warmup()

PAGES = {
    "Cells": [
        st.Page("pages/home.py", title="Gallery", icon="🧫", url_path="home", default=True),
        st.Page("pages/model.py", title="Model", icon="🧠", url_path="model"),
    ],
}

navigation = st.navigation(PAGES)
sidebar.render()
navigation.run()
