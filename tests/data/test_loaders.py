"""Tests of the data layer's loaders (fast; no network)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import (
    ImageFolderData, check_data_path, curve_points, download, find_idx_pair, load_digits, load_idx_dataset,
    load_image_folder, make_curve_fn, one_hot, pattern_numbers, read_idx, read_text, save_image_grid,
    to_tensor, valid_values,
)
from genlab.errors import DataError, GenlabError


# ---------------------------------------------------------------- synthetic

def test_curve_points_named_functions() -> None:
    pts = curve_points(500, "exp", 0.0, 50.0, seed=1)
    assert pts.shape == (500, 2) and pts.dtype == np.float32
    assert pts[:, 0].min() >= 0.0 and pts[:, 0].max() < 50.0
    np.testing.assert_allclose(pts[:, 1], 1.08 ** pts[:, 0].astype(np.float64), rtol=1e-5)
    for name, f in [("sin", np.sin), ("square", np.square)]:
        p = curve_points(100, name, -3.0, 3.0)
        np.testing.assert_allclose(p[:, 1], f(p[:, 0].astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(curve_points(10, seed=3), curve_points(10, seed=3))
    assert not np.array_equal(curve_points(10, seed=3), curve_points(10, seed=4))


@pytest.mark.parametrize("expr, ref", [
    ("0.5*x + sin(x)", lambda x: 0.5 * x + np.sin(x)),
    ("-x**2 / 4 - 1", lambda x: -x ** 2 / 4 - 1),
    ("sqrt(abs(x)) * tanh(x) + log(x + 10) - exp(-x) + cos(tan(x))",
     lambda x: np.sqrt(np.abs(x)) * np.tanh(x) + np.log(x + 10) - np.exp(-x) + np.cos(np.tan(x))),
    ("3", lambda x: np.full_like(x, 3.0)),
])
def test_curve_expressions(expr: str, ref) -> None:
    x = np.linspace(-2, 5, 50)
    np.testing.assert_allclose(make_curve_fn(expr)(x), ref(x), rtol=1e-12)
    assert curve_points(20, expr, -2, 5).shape == (20, 2)


@pytest.mark.parametrize("expr", [
    "__import__('os')", "__import__('os').system('true')", "x.__class__", "sin(x).real", "lambda: 1",
    "(lambda y: y)(x)", "np.sin(x)", "open('/etc/passwd')", "y + 1", "'abc'", "[x]", "x if x else 1",
    "x // 2", "x % 2", "x < 1", "sin(x, x)", "True", "x +", "",
])
def test_curve_expression_rejects_unsafe(expr: str) -> None:
    with pytest.raises(DataError) as e:
        make_curve_fn(expr)
    assert repr(expr) in str(e.value) or expr == ""
    assert "\n" not in str(e.value)


def test_pattern_numbers_and_one_hot() -> None:
    nums = pattern_numbers(2000, multiple=5, low=0, high=100, seed=0)
    assert nums.shape == (2000,) and nums.dtype == np.int64
    assert np.all(nums % 5 == 0) and nums.min() >= 0 and nums.max() < 100
    np.testing.assert_array_equal(np.unique(nums), valid_values(5, 0, 100))  # every value appears
    np.testing.assert_array_equal(valid_values(3, 1, 10), [3, 6, 9])
    oh = one_hot(nums[:7], 100)
    assert oh.shape == (7, 100) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(1), nums[:7])
    assert np.all(oh.sum(1) == 1)
    with pytest.raises(DataError):
        one_hot(np.array([100]), 100)
    with pytest.raises(DataError):
        valid_values(7, 1, 6)


# ---------------------------------------------------------------- digits

def test_digits_shapes() -> None:
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64 and set(y.tolist()) == set(range(10))
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
    x28, y28 = load_digits(28)
    assert x28.shape == (1797, 1, 28, 28) and x28.dtype == np.float32
    assert x28.min() >= 0.0 and x28.max() <= 1.0
    np.testing.assert_array_equal(y, y28)


# ---------------------------------------------------------------- IDX

def _idx_bytes(arr: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_idx_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images, 0x08))
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx_bytes(labels, 0x08))
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), images)
    x, y = load_idx_dataset(tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte.gz")
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28) and y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    ints = np.array([[-7, 2**30], [0, 1]], dtype=np.int32)
    (tmp_path / "ints.idx").write_bytes(_idx_bytes(ints, 0x0C))
    got = read_idx(tmp_path / "ints.idx")
    np.testing.assert_array_equal(got, ints)
    assert got.dtype.isnative


def test_idx_errors(tmp_path: Path) -> None:
    good = _idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    cases = {
        "truncated": good[:-10], "header-cut": good[:9], "extra": good + b"\0",
        "magic": b"\x01\x02" + good[2:], "dtype": good[:2] + b"\x42" + good[3:], "empty": b"",
    }
    for name, data in cases.items():
        p = tmp_path / f"{name}-images-idx3-ubyte"
        p.write_bytes(data)
        with pytest.raises(DataError) as e:
            read_idx(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value), name
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress(good)[:-30])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(gz)
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "missing")
    (tmp_path / "l").write_bytes(_idx_bytes(np.zeros(3, np.uint8), 0x08))
    (tmp_path / "i").write_bytes(good)
    with pytest.raises(DataError, match="4 images but 3 labels"):
        load_idx_dataset(tmp_path / "i", tmp_path / "l")


def test_find_idx_pair(tmp_path: Path) -> None:
    for prefix in ("t10k-", "train-"):
        (tmp_path / f"{prefix}images-idx3-ubyte.gz").write_bytes(b"x")
        (tmp_path / f"{prefix}labels-idx1-ubyte.gz").write_bytes(b"x")
    (tmp_path / "lonely-images-idx3-ubyte").write_bytes(b"x")  # no labels: not a pair
    pairs = find_idx_pair(tmp_path)
    assert [(a.name, b.name) for a, b in pairs] == [
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
    with pytest.raises(DataError):
        find_idx_pair(tmp_path / "nope")


def test_real_mnist_t10k(shared_data: Path) -> None:
    mnist = shared_data / "images" / "mnist"
    if not mnist.is_dir():
        pytest.skip("MNIST t10k not in shared data")
    pairs = find_idx_pair(mnist)
    assert pairs and pairs[0][0].name.startswith("t10k")
    x, y = load_idx_dataset(*pairs[0])
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and set(y.tolist()) == set(range(10))


# ---------------------------------------------------------------- image folders

def _make_image_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = root / "cats", root / "dogs"
    a.mkdir(parents=True)
    b.mkdir()
    rgba = np.zeros((60, 100, 4), np.uint8)  # fully transparent -> composited on white
    Image.fromarray(rgba).save(a / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (80, 50), dtype=np.uint8)).save(a / "gray.jpg")
    pal = Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(a / "palette.gif")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(b / "deep16.png")  # 16-bit grey
    Image.new("CMYK", (20, 30), (0, 255, 0, 0)).save(b / "cmyk.tiff")
    Image.fromarray(rng.integers(0, 256, (17, 33, 3), dtype=np.uint8)).save(b / "small.bmp")
    (b / "corrupt.png").write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "tmp.jpg", quality=95)
    data = (root / "tmp.jpg").read_bytes()
    (b / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "tmp.jpg").unlink()
    (b / "notes.txt").write_text("not an image")  # ignored: not an image extension
    (b / ".DS_Store").write_bytes(b"\0\1junk")  # ignored: hidden


def test_image_folder_mixed(tmp_path: Path) -> None:
    _make_image_tree(tmp_path)
    d = load_image_folder(tmp_path, size=32)
    assert isinstance(d, ImageFolderData)
    assert d.skipped == 2 and sorted(p.name for p in d.skipped_files) == ["corrupt.png", "truncated.jpg"]
    assert d.class_names == ["cats", "dogs"]
    assert d.images.shape == (6, 32, 32, 3) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [0, 0, 0, 1, 1, 1]
    # sorted within class: cats = gray.jpg, palette.gif, rgba.png; dogs = cmyk.tiff, deep16.png, small.bmp
    assert np.all(d.images[2] == 255)  # transparent RGBA -> white
    assert np.all(d.images[4] == 255)  # 16-bit full scale -> 255, not clipped garbage
    g = d.images[0].astype(int)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])  # grey stays grey
    cmyk = d.images[3].reshape(-1, 3).mean(0)
    assert cmyk[0] > 200 and cmyk[1] < 50 and cmyk[2] > 200  # magenta ink -> magenta pixels

    grey = load_image_folder(tmp_path, size=16, channels=1)
    assert grey.images.shape == (6, 16, 16, 1) and grey.skipped == 2
    few = load_image_folder(tmp_path, size=8, max_images=2)
    assert few.labels.tolist() == [0, 1]  # round-robin keeps both classes


def test_image_folder_root_files_single_class(tmp_path: Path) -> None:
    for i, (w, h) in enumerate([(10, 30), (30, 10)]):
        Image.new("RGB", (w, h), (i * 100, 0, 0)).save(tmp_path / f"{i}.png")
    d = load_image_folder(tmp_path, size=12)
    assert d.images.shape == (2, 12, 12, 3) and d.labels.tolist() == [0, 0] and len(d.class_names) == 1


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_image_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images found in .*empty"):
        load_image_folder(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"garbage")
    (bad / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError) as e:
        load_image_folder(bad)
    assert str(bad) in str(e.value) and "2" in str(e.value) and "\n" not in str(e.value)


def test_to_tensor_and_grid(tmp_path: Path) -> None:
    imgs = np.zeros((3, 4, 5, 3), np.uint8)
    imgs[1] = 255
    t = to_tensor(imgs)
    assert t.shape == (3, 3, 4, 5) and t.dtype == torch.float32
    assert t.min().item() == -1.0 and t.max().item() == 1.0
    out = save_image_grid(torch.rand(10, 3, 8, 8) * 2 - 1, tmp_path / "sub" / "grid.png", nrow=4)
    with Image.open(out) as im:
        assert im.size == (4 * 10 + 2, 3 * 10 + 2) and im.mode == "RGB"
    save_image_grid(imgs, tmp_path / "grid2.png", nrow=8)
    with Image.open(tmp_path / "grid2.png") as im:
        assert im.size == (3 * 7 + 2, 6 + 2)
    save_image_grid(torch.zeros(2, 1, 4, 4), tmp_path / "grey.png")
    with Image.open(tmp_path / "grey.png") as im:
        assert im.mode == "L"
    assert not list(tmp_path.rglob("*.tmp.png"))


# ---------------------------------------------------------------- text

def test_text_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\r\nworld")
    assert read_text(tmp_path / "a.txt").text == "hello\nworld"
    folder = tmp_path / "books"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second\n")
    (folder / "a.txt").write_text("first")
    (folder / "sub" / "c.txt").write_text("third é\n")
    (folder / "skip.md").write_text("not txt")
    d = read_text(folder)
    assert d.text == "first\nsecond\nthird é\n"
    assert [p.name for p in d.files] == ["a.txt", "b.txt", "c.txt"] and d.replaced == 0


def test_text_invalid_utf8_counted(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes("caf\u00e9 ok \ufffd kept ".encode() + b"bad \xff here \xc3 and" + b" plenty of text" * 5)
    d = read_text(p)
    assert d.replaced == 2  # the literal U+FFFD in the file is not counted
    assert d.text.count("\ufffd") == 3 and d.text.startswith("café")


def test_text_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n\t ")
    with pytest.raises(DataError, match="empty.txt is empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "nul.txt").write_bytes(b"abc\x00def")
    with pytest.raises(DataError, match="nul.txt looks binary, expected text"):
        read_text(tmp_path / "nul.txt")
    (tmp_path / "noise.txt").write_bytes(bytes(range(0x80, 0x100)) * 10)
    with pytest.raises(DataError, match="looks binary"):
        read_text(tmp_path / "noise.txt")
    (tmp_path / "nofiles").mkdir()
    with pytest.raises(DataError, match="no .txt files"):
        read_text(tmp_path / "nofiles")


def test_check_data_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        check_data_path(tmp_path / "missing")
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        check_data_path(tmp_path / "e.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match="is empty"):
        check_data_path(tmp_path / "d")
    (tmp_path / "d" / "x.bin").write_bytes(b"1")
    assert check_data_path(tmp_path / "d") == tmp_path / "d"


# ---------------------------------------------------------------- download (file:// only, no network)

def test_download_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENLAB_OFFLINE", raising=False)
    src = tmp_path / "source.bin"
    payload = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # several chunks
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    got = download(src.as_uri(), digest)
    assert got == tmp_path / "cache" / "downloads" / "source.bin" and got.read_bytes() == payload
    src.unlink()  # the second call must come from the cache
    assert download(src.as_uri(), digest.upper()) == got
    other = download((tmp_path / "gone").as_uri(), digest, filename="source.bin")  # cached by name
    assert other == got


def test_download_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENLAB_OFFLINE", raising=False)
    src = tmp_path / "f.txt"
    src.write_bytes(b"hello")
    cache = tmp_path / "c"
    with pytest.raises(DataError, match="checksum mismatch"):
        download(src.as_uri(), "0" * 64, cache_dir=cache)
    assert list(cache.iterdir()) == []  # temp file removed, nothing cached


def test_download_offline_and_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "f.txt"
    src.write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    monkeypatch.setenv("GENLAB_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        download(src.as_uri(), digest, cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "GENLAB_OFFLINE" in msg and f"place the file at {tmp_path / 'c' / 'f.txt'}" in msg
    # ... and a file placed there by hand is used offline
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "f.txt").write_bytes(b"hello")
    assert download(src.as_uri(), digest, cache_dir=tmp_path / "c") == tmp_path / "c" / "f.txt"
    monkeypatch.delenv("GENLAB_OFFLINE")
    with pytest.raises(DataError, match="cannot download .*no network.*place the file at"):
        download((tmp_path / "missing.bin").as_uri(), digest, cache_dir=tmp_path / "c2")
    with pytest.raises(DataError, match="invalid sha256"):
        download(src.as_uri(), "abc", cache_dir=tmp_path / "c3")
    assert issubclass(DataError, GenlabError)
