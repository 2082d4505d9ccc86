"""Export: CSV score table, project JSON round trip, mask PNGs, overlays, CLI."""
from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from PIL import Image

from core.annotations.cli import main as annotations_cli
from core.annotations.export import CSV_COLUMNS, export_stem, overlay_image, write_csv
from core.annotations.masks import cell_masks
from core.annotations.schema import Graded
from core.annotations.store import AnnotationStore
from tests.test_annotations_schema import make_annotation


@pytest.fixture
def filled(tmp_path):
    """A store with two annotators on one image and one on another, plus the images."""
    images = tmp_path / "images"
    images.mkdir()
    shas = []
    for k, name in enumerate(("TN_SNE_1.jpg", "TD_SNE_2.jpg")):
        rgb = np.full((363, 360, 3), 230 - 20 * k, np.uint8)
        Image.fromarray(rgb).save(images / name)
        shas.append(hashlib.sha256((images / name).read_bytes()).hexdigest())
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = AnnotationStore(url)
    store.save(make_annotation(image="TN_SNE_1.jpg", image_sha256=shas[0], annotator="ana"))
    store.save(make_annotation(image="TN_SNE_1.jpg", image_sha256=shas[0], annotator="ana", note="v2"))
    store.save(make_annotation(image="TN_SNE_1.jpg", image_sha256=shas[0], annotator="ben",
                               cytoplasm=Graded("transparent", 3), chromatin=Graded("heterogenic", 2),
                               lobes="hypersegmented", condition="dysplastic"))
    store.save(make_annotation(image="TD_SNE_2.jpg", image_sha256=shas[1], annotator="ana"))
    return store, url, images


def test_csv_has_exact_columns_and_signed_scores(tmp_path):
    a = make_annotation(cytoplasm=Graded("granular", 2), chromatin=Graded("heterogenic", 3),
                        lobes="hyposegmented", condition="dysplastic")
    out = tmp_path / "scores.csv"
    assert write_csv([a], out) == 1
    with out.open() as fh:
        reader = csv.reader(fh)
        header = next(reader)
        row = dict(zip(header, next(reader)))
    assert header == ["image", "annotator", "cytoplasm_state", "cytoplasm_score", "chromatin_state",
                      "chromatin_score", "lobes_state", "lobes_score", "total", "condition", "updated",
                      "annotator_verified"]
    assert tuple(header) == CSV_COLUMNS
    assert row["cytoplasm_score"] == "-2" and row["chromatin_score"] == "3"
    assert row["lobes_score"] == "1" and row["total"] == "2"
    assert row["condition"] == "dysplastic" and row["updated"] == "2026-11-26T10:00:00+00:00"


def test_csv_neutralises_spreadsheet_formulas(tmp_path):
    out = tmp_path / "s.csv"
    write_csv([make_annotation(image="=HYPERLINK(1).jpg")], out)
    assert "'=HYPERLINK" in out.read_text()


def test_export_then_seed_round_trip(filled, tmp_path):
    store, url, _ = filled
    out = tmp_path / "out"
    code = annotations_cli(["annotations", "export", "--db", url, "--csv", str(out / "s.csv"),
                            "--json", str(out / "json")])
    assert code == 0
    files = sorted(p.name for p in (out / "json").iterdir())
    assert files == ["TD_SNE_2__ana.json", "TN_SNE_1__ana.json", "TN_SNE_1__ben.json"]
    fresh = AnnotationStore(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    report = fresh.seed_from_dir(out / "json")
    assert len(report.imported) == 3 and report.skipped == ()
    assert fresh.all_latest() == store.all_latest()
    assert fresh.all_latest()[1].note == "v2"
    with (out / "s.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["image"], r["annotator"], r["total"]) for r in rows] == [
        ("TD_SNE_2.jpg", "ana", "-3"), ("TN_SNE_1.jpg", "ana", "-3"), ("TN_SNE_1.jpg", "ben", "6")]


def test_mask_pngs_match_the_rasterised_masks(filled, tmp_path):
    _, url, _ = filled
    out = tmp_path / "masks"
    assert annotations_cli(["annotations", "export", "--db", url, "--csv", str(tmp_path / "s.csv"),
                            "--masks", str(out)]) == 0
    assert len(list(out.iterdir())) == 9
    png = np.asarray(Image.open(out / "TN_SNE_1__ben_nucleus.png")) > 127
    assert np.array_equal(png, cell_masks(make_annotation()).nucleus)


def test_overlays_draw_outlines_and_a_title_block(filled, tmp_path):
    _, url, images = filled
    out = tmp_path / "overlays"
    assert annotations_cli(["annotations", "export", "--db", url, "--csv", str(tmp_path / "s.csv"),
                            "--overlays", str(out), "--images", str(images)]) == 0
    pic = np.asarray(Image.open(out / "TN_SNE_1__ben_overlay.png").convert("RGB"))
    assert pic.shape[0] > 363 and pic.shape[1] >= 360
    # The transparent-cytoplasm outline colour #cb4335 appears; the title band is white.
    assert (np.abs(pic.astype(int) - [0xcb, 0x43, 0x35]).sum(axis=2) < 30).sum() > 100
    assert (pic[:3, -3:] == 255).all()


def test_overlay_requires_the_image_folder(filled, tmp_path, capsys):
    _, url, _ = filled
    code = annotations_cli(["annotations", "export", "--db", url, "--csv", str(tmp_path / "s.csv"),
                            "--overlays", str(tmp_path / "o")])
    assert code == 2 and "error: --overlays and --images go together" in capsys.readouterr().err


def test_overlay_image_refuses_a_wrong_size():
    from core.errors import DisplasiaError
    with pytest.raises(DisplasiaError, match="image is 10x10"):
        overlay_image(np.zeros((10, 10, 3), np.uint8), make_annotation())


def test_export_file_names_are_safe():
    a = make_annotation(image="weird name;$(x).jpg", annotator="Dr O'Neil")
    assert export_stem(a) == "weird_name_x__Dr_O_Neil"
    assert "/" not in export_stem(make_annotation(image="..jpg"))
