import numpy as np
import pytest
from PIL import Image

from dpm.image import as_rgb, read_image, upsample_image


def save(tmp_path, name, arr, mode=None, **kw):
    path = tmp_path / name
    Image.fromarray(arr, mode=mode).save(path, **kw)
    return path


def test_read_rgb_jpeg_and_png(tmp_path, rng):
    a = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(save(tmp_path, "a.png", a)), a)
    assert read_image(save(tmp_path, "a.jpg", a)).shape == (20, 30, 3)


def test_grey_is_replicated_like_color_m(tmp_path, rng):
    g = rng.integers(0, 256, size=(12, 9), dtype=np.uint8)
    out = read_image(save(tmp_path, "g.png", g))
    assert out.shape == (12, 9, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_rgba_drops_alpha_and_palette_expands(tmp_path, rng):
    a = rng.integers(0, 256, size=(8, 8, 4), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(save(tmp_path, "a.png", a)), a[:, :, :3])
    rgb = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))


def test_16bit_is_scaled_to_8bit(tmp_path):
    a = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(a).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png")
    assert out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out[:, :, 0], np.floor(a / 257 + 0.5).astype(np.uint8))


def test_bad_files_give_one_line_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="text.jpg: not an image"):
        read_image(tmp_path / "text.jpg")
    a = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    full = save(tmp_path, "t.jpg", a).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="trunc.jpg: cannot read image"):
        read_image(tmp_path / "trunc.jpg")
    with pytest.raises(ValueError, match="directory"):
        read_image(tmp_path)


def test_as_rgb_shapes():
    assert as_rgb(np.zeros((4, 5))).shape == (4, 5, 3)
    assert as_rgb(np.zeros((4, 5, 2))).shape == (4, 5, 3)
    with pytest.raises(ValueError):
        as_rgb(np.zeros((4, 5, 6)))
    with pytest.raises(ValueError):
        as_rgb(np.zeros((0, 5, 3)))


def test_upsample_image_doubles_size(rng):
    a = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    up = upsample_image(a, 2)
    assert up.shape == (14, 18, 3) and up.dtype == np.uint8
    flat = np.full((5, 5, 3), 77, dtype=np.uint8)
    assert (upsample_image(flat, 3) == 77).all()
