"""data/images.py: the one uint8 <-> float conversion, native grids and the labelled picture."""
import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data.images import (MIN_CELL, image_grid, labelled_grid, resize_uint8, save_image_grid, to_float,
                                to_nchw_uint8, to_tensor, to_uint8)
from genlab.errors import DataError
from genlab.outputs import Images


def test_uint8_float_round_trip_and_one_contract():
    a = np.random.default_rng(0).integers(0, 256, (3, 5, 4, 3), dtype=np.uint8)
    x = to_tensor(a)
    assert x.shape == (3, 3, 5, 4) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(x), a)                               # float tensor back to the same bytes
    assert torch.equal(to_float(to_nchw_uint8(a)), x)                   # uint8 NCHW tensors convert the same way
    assert np.array_equal(to_uint8(to_nchw_uint8(a)), a)
    grey = to_tensor(a[..., 0])                                         # (N, H, W) gains a channel axis
    assert grey.shape == (3, 1, 5, 4)
    assert to_nchw_uint8(a, channels=1).shape == (3, 1, 5, 4) and to_nchw_uint8(a[..., :1], 3).shape == (3, 3, 5, 4)
    assert resize_uint8(to_nchw_uint8(a), 8).dtype == torch.uint8
    with pytest.raises(DataError):
        to_tensor(a.astype(np.float32))


def test_labelled_picture_is_scaled_up_and_captioned(tmp_path):
    faces = np.zeros((6, 16, 16, 3), np.uint8)
    faces[:, 4:12, 4:12] = 255
    native = image_grid(faces, ncol=3)
    assert native.shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    plain = labelled_grid(faces, ncol=3)
    captioned = labelled_grid(faces, ncol=3, row_labels=["no glasses", "glasses"], col_labels=["a", "b", "c"],
                              labels=["x"] * 6, title="rows: label", highlight=[True] + [False] * 5)
    assert plain.shape[1] >= 3 * MIN_CELL and plain.shape[0] >= 2 * MIN_CELL
    assert captioned.shape[0] > plain.shape[0] and captioned.shape[1] > plain.shape[1]   # room for the text
    red = (captioned[..., 0] > 200) & (captioned[..., 1] < 80)
    assert red.any()                                                    # the highlighted caption
    # nearest neighbour: every cell is the image repeated, no blur at the square's edges
    cell = plain[4:4 + 64, 4:4 + 64]
    assert set(np.unique(cell)) <= {0, 255}


def test_images_output_writes_the_picture_and_the_native_grid(tmp_path):
    out = Images(np.full((4, 8, 8, 1), 128, np.uint8), labels=["0", "1", "2", "3"], files_dir="each")
    paths = out.to_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "samples.png", "samples-native.png", "each/00000.png", "each/00001.png", "each/00002.png", "each/00003.png"]
    with Image.open(paths[0]) as big, Image.open(paths[1]) as small:
        assert big.size[0] >= 2 * MIN_CELL and small.size == (2 * 10 + 2, 2 * 10 + 2) and small.mode == "L"
    assert not list(tmp_path.glob(".*.tmp"))                            # written through the atomic writer
    save_image_grid(torch.zeros(2, 3, 4, 4), tmp_path / "g.png")
    assert out.to_json()["labels"] == ["0", "1", "2", "3"]
