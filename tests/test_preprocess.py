"""Preprocessing: every PIL mode decodes to RGB; nearest resize matches Keras' loader."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import DisplasiaError
from core.preprocess import image_hash, load_batch, load_input, load_rgb, to_model_input


@pytest.fixture
def rgb():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (363, 360, 3), dtype=np.uint8)


def save(image: Image.Image, path, **kw):
    image.save(path, **kw)
    return path


def test_modes_become_rgb_uint8(tmp_path, rgb):
    base = Image.fromarray(rgb)
    cases = {
        "L.png": base.convert("L"), "RGBA.png": base.convert("RGBA"), "P.png": base.convert("P"),
        "LA.png": base.convert("LA"), "CMYK.jpg": base.convert("CMYK"), "1.bmp": base.convert("1"),
        "RGB.tif": base,
    }
    for name, image in cases.items():
        out = load_rgb(save(image, tmp_path / name))
        assert out.dtype == np.uint8 and out.shape == (363, 360, 3), name
    # Grey stays grey; RGBA drops alpha like Keras' convert("RGB").
    grey = load_rgb(tmp_path / "L.png")
    assert (grey[..., 0] == grey[..., 2]).all()
    np.testing.assert_array_equal(load_rgb(tmp_path / "RGBA.png"), rgb)


def test_16_bit_grey_is_rescaled_not_clipped(tmp_path):
    ramp = (np.arange(256 * 4, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)
    path = save(Image.fromarray(ramp), tmp_path / "deep.png")
    out = load_rgb(path)
    assert out.shape == (32, 32, 3)
    expected = np.round(ramp / 65535 * 255).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 1], expected)
    assert out.max() > 250 and out.min() == 0  # PIL's convert would have clipped to 255 early


def test_nearest_resize_equals_keras_loader(tmp_path, rgb):
    import keras

    path = save(Image.fromarray(rgb), tmp_path / "cell.jpg", quality=90)
    ours = load_input(path, (299, 299))
    theirs = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(299, 299), interpolation="nearest")) / 255.0
    np.testing.assert_array_equal(ours, theirs.astype(np.float32))
    assert ours.dtype == np.float32 and 0.0 <= ours.min() and ours.max() <= 1.0


def test_interpolation_is_a_setting(rgb):
    near = to_model_input(rgb, (299, 299), "nearest")
    bil = to_model_input(rgb, (299, 299), "bilinear")
    assert near.shape == bil.shape and not np.array_equal(near, bil)
    with pytest.raises(DisplasiaError, match="interpolation"):
        to_model_input(rgb, (299, 299), "lanczos")


def test_same_size_is_not_resampled(rgb):
    np.testing.assert_array_equal(to_model_input(rgb, rgb.shape[:2]) * 255, rgb.astype(np.float32))


def test_bytes_and_batches(tmp_path, rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    np.testing.assert_array_equal(load_rgb(buffer.getvalue()), rgb)
    path = save(Image.fromarray(rgb), tmp_path / "a.png")
    batch = load_batch([path, path], (20, 30))
    assert batch.shape == (2, 20, 30, 3) and batch.dtype == np.float32


def test_unreadable_files_give_one_line_error(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(DisplasiaError, match="broken.jpg is not a readable image"):
        load_rgb(tmp_path / "broken.jpg")
    with pytest.raises(DisplasiaError, match="not found"):
        load_rgb(tmp_path / "absent.jpg")


def test_image_hash_distinguishes_content(rgb):
    other = rgb.copy()
    other[0, 0, 0] ^= 1
    assert image_hash(rgb) == image_hash(rgb.copy()) != image_hash(other)
    assert image_hash(b"abc") != image_hash(b"abd")
