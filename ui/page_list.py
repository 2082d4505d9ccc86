"""The dashboard's pages: the one list the router, the tests and the scripts read.

Plain data (no streamlit import), so tests and scripts can import it without a running app.
``proof`` is a text that the page shows once its main result is on screen; browser tests
and ``scripts/measure_dashboard.py`` wait for it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    """One page: its script, sidebar section, title, URL path, icon and proof text."""

    script: str
    section: str
    title: str
    url_path: str
    icon: str
    proof: str
    default: bool = False
    role: str = "viewer"       # weakest role that sees the page (core.auth.ROLES)

    @property
    def slug(self) -> str:
        """File-name form of the URL path (screenshots)."""
        return self.url_path.replace("-", "_")


PAGES = (
    PageInfo("pages/home.py", "Cells", "Gallery", "home", ":material/grid_view:", "cells scored.",
             default=True),
    PageInfo("pages/model.py", "Cells", "Model", "model", ":material/memory:", "Parameters"),
    PageInfo("pages/annotate.py", "Cells", "Annotate", "annotate", ":material/draw:", "Cytoplasm"),
    PageInfo("pages/compare.py", "Explain", "Compare", "compare", ":material/view_module:", "Open Score-CAM"),
    PageInfo("pages/feature_maps.py", "Explain", "Feature maps", "feature-maps", ":material/layers:",
             "Enlarge channel"),
    PageInfo("pages/saliency.py", "Explain", "Saliency", "saliency", ":material/gradient:", "SmoothGrad"),
    PageInfo("pages/occlusion.py", "Explain", "Occlusion", "occlusion", ":material/select:", "largest reduction"),
    PageInfo("pages/lime.py", "Explain", "LIME", "lime", ":material/texture:", "Surrogate fit"),
    PageInfo("pages/cams.py", "Explain", "CAMs", "cams", ":material/thermostat:", "Score-CAM"),
    PageInfo("pages/background.py", "Explain", "Background test", "background", ":material/wallpaper:",
             "Score change"),
    PageInfo("pages/projection.py", "Explain", "Projection", "projection", ":material/scatter_plot:",
             "pathologist's signed total"),
    PageInfo("pages/summary.py", "Evidence", "Summary", "summary", ":material/summarize:", "Scores per class"),
    PageInfo("pages/concepts.py", "Evidence", "Concepts", "concepts", ":material/psychology:", "P(normal) of"),
    PageInfo("pages/admin.py", "Admin", "Audit and settings", "admin", ":material/admin_panel_settings:",
             "Audit log", role="admin"),
)


def page(script_or_path: str) -> PageInfo:
    """The page whose script (``pages/x.py``) or URL path (``x``) is given."""
    for info in PAGES:
        if script_or_path in (info.script, info.url_path):
            return info
    raise KeyError(script_or_path)


def sections(role: str = "admin") -> dict:
    """``{section: [PageInfo, ...]}`` in order, as the sidebar shows them to ``role``."""
    from core.auth import role_at_least

    grouped: dict = {}
    for info in PAGES:
        if role_at_least(role, info.role):
            grouped.setdefault(info.section, []).append(info)
    return grouped
