"""The bundled demo set: its annotations seed cleanly and the outline suggestion meets
the target IoU against its ground truth."""
from __future__ import annotations

import pytest

from core import config
from core.annotations.segment import evaluate_folder
from core.annotations.store import AnnotationStore

needs_demo = pytest.mark.skipif(not config.DEMO_TRUTH_DIR.is_dir() or not config.DEMO_ANNOTATIONS_DIR.is_dir(),
                                reason="demo set not built")


@needs_demo
def test_demo_annotations_seed_without_skips_and_only_once():
    store = AnnotationStore("sqlite://")
    first = store.seed_from_dir(config.DEMO_ANNOTATIONS_DIR)
    assert first.skipped == () and len(first.imported) >= 1
    assert store.seed_from_dir(config.DEMO_ANNOTATIONS_DIR).imported == ()
    assert len(store.annotated_images()) == len(first.imported)


@needs_demo
@pytest.mark.slow
def test_outline_suggestion_meets_the_target_on_the_demo_set():
    result = evaluate_folder(config.DEMO_DIR, config.DEMO_TRUTH_DIR)
    assert result.n >= 50
    assert result.cell_mean >= 0.85 and result.nucleus_mean >= 0.85
    assert result.cell_min >= 0.7 and result.nucleus_min >= 0.6
