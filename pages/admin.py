"""Admin: the audit log (who computed or annotated what) and the effective server settings."""
import json

import pandas as pd
import streamlit as st

from core.audit import EVENTS, audit_log
from core.settings import describe, load_settings
from ui import auth, precompute, widgets

st.title("Audit and settings")
if not auth.may("admin"):
    st.error("This page is for administrators.")
    widgets.stop()
st.subheader("Audit log")
cols = st.columns([2, 2, 1])
who = cols[0].text_input("Identity", key="admin_who", max_chars=128).strip() or None
event = cols[1].selectbox("Event", ["(all)", *EVENTS], key="admin_event")
limit = cols[2].number_input("Newest", 10, 100_000, 500, step=100, key="admin_limit")
log = audit_log()
result = log.read_all(limit=int(limit), who=who, event=None if event == "(all)" else event)
st.caption(f"{len(result.records)} record(s) shown from {len(log.files())} file(s); "
           f"{result.damaged_lines} damaged line(s) skipped.")
table = pd.DataFrame(result.records, columns=["ts", "event", "who", "verified", "role", "dataset", "cell", "method",
                                              "target", "params", "version", "detail"])
for column in ("params", "detail"):
    table[column] = table[column].map(lambda v: "" if v is None or v != v else str(v))
st.dataframe(table, hide_index=True, width="stretch")
st.download_button("Download (JSON lines)", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.records),
                   "audit.jsonl", "application/jsonl", key="admin_download")
precompute.section()
st.subheader("Settings")
settings = load_settings()
st.caption("Settings file: " + (auth.plain(settings.source) if settings.source else "none (defaults and environment)"))
st.dataframe(pd.DataFrame([line.split(" = ", 1) for line in describe(settings)], columns=["setting", "value"]),
             hide_index=True, width="stretch")
if not st.session_state.get("admin_viewed"):
    st.session_state["admin_viewed"] = True
    auth.audit("settings_viewed")
