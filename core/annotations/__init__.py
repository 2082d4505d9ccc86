"""Pathologist annotations: schema and scores, versioned store, masks, legacy import,
export, outline suggestion, inter-annotator agreement and canvas converters.

No streamlit and no TensorFlow here; the Annotate page builds on this API.
"""
from .masks import CellMasks, cell_masks, mask_iou, model_masks, polygon_mask
from .schema import (COLOUR_STATES, SCHEMA_ID, STATE_COLOURS, Annotation, ChromatinState,
                     Condition, CytoplasmState, Graded, LobeState, Scores, Shape, ShapeLabel,
                     chromatin_score, condition_from_total, cytoplasm_score, label_colour,
                     lobes_score, score_disagrees, state_of_colour)
from .store import AnnotationStore, ImageEntry, SeedReport, VersionInfo, read_annotation_file

__all__ = [
    "Annotation", "AnnotationStore", "COLOUR_STATES", "CellMasks", "ChromatinState", "Condition",
    "CytoplasmState", "Graded", "ImageEntry", "LobeState", "SCHEMA_ID", "STATE_COLOURS", "Scores",
    "SeedReport", "Shape", "ShapeLabel", "VersionInfo", "cell_masks", "chromatin_score",
    "condition_from_total", "cytoplasm_score", "label_colour", "lobes_score", "mask_iou",
    "model_masks", "polygon_mask", "read_annotation_file", "score_disagrees", "state_of_colour",
]
