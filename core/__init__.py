"""Core of the DisplasiaNet explanation dashboard: pure Python, NumPy and TensorFlow.

Nothing in this package imports streamlit, and TensorFlow is only imported inside the
functions that need it, so the dashboard's first page renders before TensorFlow loads.
"""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise for users and CLI output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
