"""Streamlit glue: session state, cached core calls, shared widgets. Pages and app.py only."""

from streamlit.runtime.pages_manager import PagesManager

# The app routes with st.navigation (app.py), but Streamlit still treats a top-level pages/
# folder as the old automatic multipage mode until the router has run once in the process:
# a first visit straight to /annotate would run that page alone, without app.py. Turning
# the old mode off as soon as our code is imported (and re-running, see state.selection)
# keeps every request going through the router.
PagesManager.uses_pages_directory = False
