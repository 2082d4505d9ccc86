"""DisplasiaNet explainer: router and shared sidebar. Run: streamlit run app.py"""
import streamlit as st

from ui import auth, foreground, resources, server_tuning, sidebar, state, widgets
from ui.page_list import sections

st.set_page_config(page_title="DisplasiaNet explainer", page_icon=":material/biotech:", layout="wide")
state.require_settings()       # invalid settings: one red line, nothing else runs
server_tuning.keep_keras_between_runs()
resources.start_tensorflow_warmup()

with foreground.page_run():      # background map work stands aside meanwhile
    role = auth.require_login()  # login on and nobody logged in: the login form, then stop
    navigation = st.navigation({
        section: [st.Page(p.script, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
                  for p in pages]
        for section, pages in sections(role).items()
    })
    with widgets.url_batch():    # the run's query-string values, in two messages, not ten
        sidebar.render()
        widgets.flush_url()      # the selection reaches the address even if the page stops
        navigation.run()
        widgets.run_end_marker()  # last element: the page is complete when it shows (tests, measures)
