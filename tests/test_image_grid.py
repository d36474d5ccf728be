"""torchvision.utils.make_grid / save_image semantics: layout, padding, gray to RGB,
normalization, and an 8-bit PNG that reads back."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing.utils import make_grid, save_image


def test_grid_layout_padding_and_placement():
    imgs = sj.tensor(np.arange(5 * 3 * 4 * 6, dtype=np.float32).reshape(5, 3, 4, 6))
    g = make_grid(imgs, nrow=2, padding=1, pad_value=-1.0).numpy()
    assert g.shape == (3, 3 * (4 + 1) + 1, 2 * (6 + 1) + 1)  # 3 rows of 2
    np.testing.assert_array_equal(g[:, 1:5, 1:7], imgs.numpy()[0])
    np.testing.assert_array_equal(g[:, 1:5, 8:14], imgs.numpy()[1])
    np.testing.assert_array_equal(g[:, 11:15, 1:7], imgs.numpy()[4])
    assert (g[:, 0, :] == -1).all() and (g[:, 11:15, 8:14] == -1).all()  # empty last cell


def test_gray_becomes_rgb_and_single_image_passes_through():
    one = sj.rand(1, 1, 5, 5)
    g = make_grid(one).numpy()
    assert g.shape == (3, 5, 5)
    np.testing.assert_array_equal(g[0], one.numpy()[0, 0])
    np.testing.assert_array_equal(g[2], one.numpy()[0, 0])


def test_normalize_with_and_without_value_range():
    x = sj.tensor([[[[-2.0, 0.0], [2.0, 6.0]]], [[[0.0, 1.0], [1.0, 1.0]]]])
    g = make_grid(x, normalize=True, padding=0).numpy()
    assert g.min() == 0.0 and g.max() == 1.0
    np.testing.assert_allclose(g[0, 0, :2], [0.0, 0.25])
    g = make_grid(x, normalize=True, value_range=(0, 2), padding=0).numpy()
    np.testing.assert_allclose(g[0, 1, :2], [1.0, 1.0])  # clipped to the range
    each = make_grid(x, normalize=True, scale_each=True, padding=0).numpy()
    np.testing.assert_allclose(each[0, :, 2:], [[0.0, 1.0], [1.0, 1.0]])


def test_save_image_writes_an_8bit_png(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    x = sj.tensor(np.linspace(0, 1, 2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4))
    path = tmp_path / "grid.png"
    save_image(x, path, nrow=2, padding=0)
    back = np.asarray(Image.open(path))
    assert back.shape == (4, 8, 3) and back.dtype == np.uint8
    want = np.clip(make_grid(x, padding=0).numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(back, want.transpose(1, 2, 0))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary left


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="nrow"):
        make_grid(sj.rand(2, 3, 4, 4), nrow=0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        make_grid(sj.rand(2, 2, 3, 4, 4))
