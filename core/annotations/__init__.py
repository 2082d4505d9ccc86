"""Pathologist annotations: schema and scores, versioned store, masks, legacy import,
export, outline suggestion, inter-annotator agreement and canvas converters.

No streamlit and no TensorFlow here; the Annotate page builds on this API.
"""
from .agreement import agreement_table, image_agreement, weighted_kappa
from .canvas import annotation_to_canvas, canvas_to_shapes, display_size_for, shapes_to_canvas
from .export import export_store, overlay_image, score_rows
from .legacy import LegacyImportReport, image_identity, import_legacy_dir, read_legacy_bytes
from .masks import CellMasks, cell_masks, mask_iou, model_masks, polygon_mask
from .schema import (
                     COLOUR_STATES,
                     SCHEMA_ID,
                     STATE_COLOURS,
                     Annotation,
                     ChromatinState,
                     Condition,
                     CytoplasmState,
                     Graded,
                     LobeState,
                     Scores,
                     Shape,
                     ShapeLabel,
                     blank_annotation,
                     chromatin_score,
                     condition_from_total,
                     cytoplasm_score,
                     label_colour,
                     lobes_score,
                     score_disagrees,
                     state_of_colour,
)
from .segment import OutlineSuggestion, SegmentationParams, evaluate_folder, suggest_outlines
from .store import AnnotationStore, ImageEntry, SeedReport, VersionInfo, read_annotation_file

__all__ = [
    "Annotation", "AnnotationStore", "COLOUR_STATES", "CellMasks", "ChromatinState", "Condition",
    "CytoplasmState", "Graded", "ImageEntry", "LegacyImportReport", "LobeState",
    "OutlineSuggestion", "SCHEMA_ID", "STATE_COLOURS", "Scores", "SeedReport",
    "SegmentationParams", "Shape", "ShapeLabel", "VersionInfo", "agreement_table",
    "annotation_to_canvas", "blank_annotation", "canvas_to_shapes", "cell_masks",
    "chromatin_score", "condition_from_total", "cytoplasm_score", "display_size_for",
    "evaluate_folder", "export_store", "image_agreement", "image_identity", "import_legacy_dir",
    "label_colour", "lobes_score", "mask_iou", "model_masks", "overlay_image", "polygon_mask",
    "read_annotation_file", "read_legacy_bytes", "score_disagrees", "score_rows",
    "shapes_to_canvas", "state_of_colour", "suggest_outlines", "weighted_kappa",
]
