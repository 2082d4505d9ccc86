"""A full run writes its query-string values in one message (ui.widgets.url_batch)."""
from __future__ import annotations

from streamlit.runtime.state.query_params import QueryParams
from streamlit.testing.v1 import AppTest

SENT: list = []


def _script():
    import streamlit as st

    from ui import widgets
    from ui.widgets import persistent, url_batch, write_url

    with url_batch():
        persistent(st.slider, "Samples", "demo.samples", 5, min_value=1, max_value=50)
        persistent(st.number_input, "Noise", "demo.noise", 0.15)
        persistent(st.selectbox, "Fill", "demo.fill", "mean", options=["mean", "grey"])
        write_url({"cell": "TN_SNE_1.jpg"})
        st.session_state["inside"] = dict(st.query_params.to_dict())
        if st.session_state.get("stop_here"):
            widgets.stop()
    persistent(st.checkbox, "Signed", "demo.signed", False)    # outside a batch: written at once


def _spy(monkeypatch):
    """Record every query-string message (a spy around Streamlit's own method)."""
    real = QueryParams._send_query_param_msg

    def counted(self):
        SENT.append(dict(self._query_params))
        return real(self)

    SENT.clear()
    monkeypatch.setattr(QueryParams, "_send_query_param_msg", counted)


def test_a_run_writes_its_url_values_in_one_message(monkeypatch):
    _spy(monkeypatch)
    at = AppTest.from_function(_script, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["inside"] == {}                     # nothing sent while the run goes on
    batched = [m for m in SENT if "demo.signed" not in m]       # before the checkbox
    assert batched == [{"demo.samples": "5", "demo.noise": "0.15", "demo.fill": "mean", "cell": "TN_SNE_1.jpg"}]
    assert dict(at.query_params) == {"demo.samples": "5", "demo.noise": "0.15", "demo.fill": "mean",
                                     "cell": "TN_SNE_1.jpg", "demo.signed": "false"}
    at.slider(key="w:demo.samples").set_value(9).run()
    assert at.query_params["demo.samples"] == "9"


def test_a_stopped_run_still_writes_what_it_kept(monkeypatch):
    _spy(monkeypatch)
    at = AppTest.from_function(_script, default_timeout=60)
    at.session_state["stop_here"] = True
    at.run()
    assert not at.exception, at.exception
    assert SENT == [{"demo.samples": "5", "demo.noise": "0.15", "demo.fill": "mean", "cell": "TN_SNE_1.jpg"}]
    assert "demo.signed" not in at.query_params                 # nothing ran after the stop
