"""Every per-cell method of the registry on real CellaVision cells (data/real_pbc, CC BY 4.0).

The bundled real cells are normal neutrophils of the PBC data set (see its NOTICE.md);
the demo model has never seen real cells, so this checks that the engine works on real
images (JPEG noise, real stain and red cells), not what the maps should show.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.config import DATA_DIR
from core.explain import METHODS, compute

REAL = DATA_DIR / "real_pbc"
#: Smaller settings for the slow methods; the others run with their defaults.
QUICK = {"lime": {"samples": 150, "stability_runs": 2}, "smoothgrad": {"samples": 8}, "occlusion": {"patch": 40}}


def test_the_bundled_real_cells_are_a_labelled_dataset_with_their_licence():
    from core.datasets import scan_dataset

    dataset = scan_dataset(REAL, roots=[DATA_DIR])
    assert len(dataset.cells) == 24
    assert {cell.label for cell in dataset.cells} == {"normal"}
    notice = (REAL / "NOTICE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "Acevedo" in notice and "10.17632/snkd93bnjr.1" in notice


@pytest.fixture(scope="module")
def real():
    from core.config import demo_model_path
    from core.model_io import load_model
    from core.preprocess import load_batch

    json_path, weights_path = demo_model_path()
    if not json_path.is_file():
        pytest.skip("the demo model is not bundled")
    loaded = load_model(json_path, weights_path)
    paths = sorted(REAL.glob("*.jpg"))[::12]  # 2 cells: a band and a segmented neutrophil
    return loaded, load_batch(paths, loaded.description.image_size), [p.name for p in paths]


@pytest.mark.parametrize("name", [n for n, spec in METHODS.items() if spec.per_cell])
def test_every_per_cell_method_runs_on_real_cells(real, name):
    loaded, images, names = real
    spec = METHODS[name]
    for target in ("dysplastic", "normal"):
        exp = compute(name, loaded, images, target, params=QUICK.get(name))
        assert exp.maps.shape == (len(images), 299, 299) and np.isfinite(exp.maps).all()
        for i in range(len(images)):
            if spec.empty_positive_ok and np.ptp(exp.maps[i]) == 0:
                signed = compute(name, loaded, images[i:i + 1], target, params={"evidence": "signed"}).maps[0]
                assert np.ptp(signed) > 0 and signed.max() <= 1e-6, (name, target, names[i])
                continue
            assert np.ptp(exp.maps[i]) > 0, (name, target, names[i])
