"""The quilting of scripts/realism_resynthesis.py (the seventh realism round's experiment)."""
from __future__ import annotations

import importlib.util

import numpy as np

from core.config import REPO_ROOT


def _script():
    spec = importlib.util.spec_from_file_location("realism_resynthesis", REPO_ROOT / "scripts" / "realism_resynthesis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_min_cut_follows_the_cheap_column():
    err = np.ones((9, 5))
    err[:, 2] = 0.0
    keep = _script().min_cut(err)
    assert keep[:, 2:].all() and not keep[:, :2].any()


def test_quilt_fills_only_the_target_and_only_with_source_pixels():
    rng = np.random.default_rng(0)
    tex = np.full((80, 80, 1), -1.0)
    tex[:, :40, 0] = rng.uniform(1.0, 2.0, (80, 40))
    src = np.zeros((80, 80), bool)
    src[:, :40] = True
    target = np.zeros((80, 80), bool)
    target[20:60, 45:75] = True
    out = _script().quilt(tex, src, target, np.random.default_rng(1), block=10, overlap=3)
    assert np.array_equal(out[~target], tex[~target])
    assert np.isin(out[target, 0], tex[src, 0]).all()
    # whole pieces are copied: most horizontal neighbours in the target are neighbours in the source
    pairs = set(zip(tex[src, 0][:-1].tolist(), tex[src, 0][1:].tolist()))
    made = out[20:60, 45:75, 0]
    kept = np.mean([(a, b) in pairs for a, b in zip(made[:, :-1].ravel(), made[:, 1:].ravel())])
    assert kept > 0.7


def test_resynthesis_moves_only_the_inside_of_the_cell():
    from scipy import ndimage as ndi

    from core.synth import cell_features

    script = _script()
    features = cell_features(777, 0, "normal")
    canvas = script.capture_of(features)
    copy = script.resynthesised_cell(features, "copy")
    remade = script.resynthesised_cell(features, "real-shape")
    assert copy.shape == remade.shape == canvas.rgb.shape
    # JPEG blocks (8 px) wholly outside the outline are the capture's, byte for byte
    far = ~ndi.binary_dilation(canvas.cell, iterations=16)
    assert np.array_equal(copy[far], remade[far])
    # the nucleus is re-made, and with the capture's own colours (not a flat or foreign fill)
    nucleus = ndi.binary_erosion(canvas.nucleus, iterations=3)
    diff = np.abs(copy.astype(int) - remade.astype(int))[nucleus]
    assert diff.mean() > 5
    assert np.abs(copy[nucleus].mean(0) - remade[nucleus].mean(0)).max() < 12
    assert np.array_equal(remade, script.resynthesised_cell(features, "real-shape"))   # deterministic
