"""Concept-level explanations: TCAV (concept sensitivity) and concept sweeps.

Nothing here imports TensorFlow or streamlit at import time.
"""
from .sets import (
                   GENERATOR_CONCEPTS,
                   ConceptSet,
                   ImageSet,
                   annotation_concepts,
                   class_cells,
                   concept_names,
                   dataset_class_cells,
                   dataset_readings,
                   generator_concepts,
                   random_cells,
)
from .tcav import TcavParams, TcavResult, run_tcav, sentence

__all__ = [
    "GENERATOR_CONCEPTS", "ConceptSet", "ImageSet", "TcavParams", "TcavResult", "annotation_concepts",
    "class_cells", "concept_names", "dataset_class_cells", "dataset_readings", "generator_concepts",
    "random_cells", "run_tcav", "sentence",
]
