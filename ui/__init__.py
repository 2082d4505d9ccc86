"""Streamlit glue: session state, cached core calls, shared widgets. Pages and app.py only."""
