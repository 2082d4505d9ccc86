"""The project's colours: one palette, so a group looks the same on every page and report.

Okabe-Ito colours (distinguishable with the common colour-vision deficiencies): warm hues
for dysplastic groups, blue hues for normal ones, the lighter hue of each for the cells the
model gets wrong.
"""
from __future__ import annotations

#: Cell groups (dataset class x model outcome) as the summaries and the projection name them.
GROUP_COLOURS = {
    "dysplastic": "#D55E00",
    "normal": "#0072B2",
    "misclassified dysplastic": "#E69F00",
    "misclassified normal": "#56B4E9",
    "unlabelled": "#999999",
}
#: Cell regions of the localisation tables.
REGION_COLOURS = {"nucleus": "#5b2c6f", "cytoplasm": "#e59866", "background": "#bfc9ca", "granules": "#a04000"}


def group_colour(group: str) -> str:
    """The colour of ``group``; grey for a group the palette does not know.

    >>> group_colour("normal"), group_colour("other")
    ('#0072B2', '#999999')
    """
    return GROUP_COLOURS.get(group, GROUP_COLOURS["unlabelled"])
