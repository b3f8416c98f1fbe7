"""Procedural faces: shapes, determinism, balanced attributes, local edits, learnability, cache."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

import genlab.data.faces as faces_mod
from genlab.data.faces import ATTRIBUTES, FacesDataset, load_faces, render_faces
from genlab.data.images import to_tensor
from genlab.errors import DataError

A = {name: i for i, name in enumerate(ATTRIBUTES)}


@pytest.fixture(scope="module")
def sample32() -> tuple[np.ndarray, np.ndarray]:
    """2,000 faces at 32x32 shared by the statistics tests."""
    return render_faces(np.arange(2000), seed=3, size=32)


def _changed(a: np.ndarray, b: np.ndarray, tol: int = 8) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > tol


def test_attribute_names():
    assert ATTRIBUTES[:3] == ("glasses", "blond", "smiling")
    assert len(set(ATTRIBUTES)) == len(ATTRIBUTES)


@pytest.mark.parametrize("size", [64, 32, 16, 45])
def test_shapes_and_dtypes(size):
    images, attrs = render_faces([0, 1, 2, 3], seed=0, size=size)
    assert images.shape == (4, size, size, 3) and images.dtype == np.uint8
    assert attrs.shape == (4, len(ATTRIBUTES)) and attrs.dtype == np.int64
    assert set(np.unique(attrs)) <= {0, 1}
    empty, empty_attrs = render_faces([], size=size)
    assert empty.shape == (0, size, size, 3) and empty_attrs.shape == (0, len(ATTRIBUTES))


def test_deterministic_per_seed_and_index():
    all10, attrs10 = render_faces(range(10), seed=7, size=32)
    some, attrs = render_faces([5, 6, 7], seed=7, size=32)
    assert np.array_equal(some, all10[5:8]) and np.array_equal(attrs, attrs10[5:8])
    rev, _ = render_faces(np.array([7, 5]), seed=7, size=32)
    assert np.array_equal(rev, all10[[7, 5]])
    # across the internal chunk boundary and thread pool
    big, _ = render_faces(range(70), seed=7, size=32)
    tail, _ = render_faces([31, 32, 33, 69], seed=7, size=32)
    assert np.array_equal(big[[31, 32, 33, 69]], tail) and np.array_equal(big[:10], all10)
    other, _ = render_faces(range(10), seed=8, size=32)
    assert not np.array_equal(other, all10)


def test_attributes_balanced_and_independent(sample32):
    _, attrs = sample32
    means = attrs.mean(0)
    assert np.all(np.abs(means - 0.5) < 0.05), means
    corr = np.corrcoef(attrs.T)
    off = corr[~np.eye(len(ATTRIBUTES), dtype=bool)]
    assert np.all(np.abs(off) < 0.08), corr


def test_images_are_varied(sample32):
    images, _ = sample32
    x = images[:300].astype(np.float32)
    assert x.std(0).mean() > 30          # per-pixel spread across faces
    flat = x.reshape(len(x), -1)
    assert len(np.unique(flat, axis=0)) == len(flat)          # no two faces alike
    assert images.reshape(len(images), -1).mean(1).std() > 8   # brightness varies too


def test_forcing_blond_changes_only_the_hair():
    idx = np.arange(40)
    blond, attrs_b = render_faces(idx, seed=1, attributes={"blond": True})
    black, attrs_k = render_faces(idx, seed=1, attributes={"blond": False})
    assert attrs_b[:, A["blond"]].all() and not attrs_k[:, A["blond"]].any()
    # other attributes untouched
    _, natural = render_faces(idx, seed=1)
    keep = [i for i in range(len(ATTRIBUTES)) if i != A["blond"]]
    assert np.array_equal(attrs_b[:, keep], natural[:, keep])
    ch = _changed(blond, black)
    frac = ch.mean((1, 2))
    assert frac.mean() < 0.35 and frac.max() < 0.6 and frac.min() > 0.03
    on = blond[ch].astype(np.float32)
    off = black[ch].astype(np.float32)
    assert on.mean() > off.mean() + 60                       # brighter
    yellow = lambda c: (c[:, 0] + c[:, 1]) / 2 - c[:, 2]     # noqa: E731
    assert yellow(on).mean() > yellow(off).mean() + 30       # yellower
    assert off.mean() < 70                                   # black hair is dark
    # the forced value that equals the natural one reproduces the natural image
    nat_img, _ = render_faces(idx, seed=1)
    same = natural[:, A["blond"]] == 1
    assert np.array_equal(nat_img[same], blond[same]) and np.array_equal(nat_img[~same], black[~same])


def test_forcing_glasses_and_smile_is_local():
    idx = np.arange(40)
    g_on, _ = render_faces(idx, seed=2, attributes={"glasses": True})
    g_off, _ = render_faces(idx, seed=2, attributes={"glasses": np.zeros(40, bool)})
    s_on, attrs = render_faces(idx, seed=2, attributes={"smiling": 1})
    s_off, _ = render_faces(idx, seed=2, attributes={"smiling": [0] * 40})
    assert attrs[:, A["smiling"]].all()
    cg, cs = _changed(g_on, g_off), _changed(s_on, s_off)
    for ch, hi in ((cg, 0.15), (cs, 0.1)):
        frac = ch.mean((1, 2))
        assert frac.min() > 0.005 and frac.max() < hi, frac
    rows = np.arange(64)[None, :, None]
    row_g = (cg * rows).sum((1, 2)) / cg.sum((1, 2))
    row_s = (cs * rows).sum((1, 2)) / cs.sum((1, 2))
    assert np.all(row_s > row_g + 3)         # the mouth is below the glasses
    assert np.all((row_g > 16) & (row_g < 48))


def test_attributes_learnable_from_16px(sample32):
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    images, attrs = sample32
    x = images.reshape(-1, 16, 2, 16, 2, 3).mean((2, 4)).reshape(len(images), -1) / 255.0
    n_train = 1500
    x = (x - x[:n_train].mean(0)) / (x[:n_train].std(0) + 1e-3)
    with threadpool_limits(1):  # BLAS threads only fight on a busy machine
        for name, j in A.items():
            clf = LogisticRegression(C=0.1, max_iter=500).fit(x[:n_train], attrs[:n_train, j])
            acc = clf.score(x[n_train:], attrs[n_train:, j])
            assert acc > 0.85, (name, acc)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    images, attrs = load_faces(12, size=32, seed=4)
    files = list((tmp_path / "faces").glob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "faces").glob("*.tmp"))
    with np.load(files[0], allow_pickle=False) as z:
        assert sorted(z.files) == ["attributes", "images"]
        assert np.array_equal(z["images"], images) and np.array_equal(z["attributes"], attrs)
    with zipfile.ZipFile(files[0]) as zf:  # plain .npy arrays, no pickled objects
        assert all(n.endswith(".npy") for n in zf.namelist())
    ref, ref_attrs = render_faces(range(12), seed=4, size=32)
    assert np.array_equal(images, ref) and np.array_equal(attrs, ref_attrs)

    def boom(*a, **k):
        raise AssertionError("should have used the cache")
    with monkeypatch.context() as m:
        m.setattr(faces_mod, "render_faces", boom)
        again, _ = load_faces(12, size=32, seed=4)
        prefix, prefix_attrs = load_faces(5, size=32, seed=4)     # served from the larger file
    assert np.array_equal(again, images) and np.array_equal(prefix, images[:5])
    assert np.array_equal(prefix_attrs, attrs[:5])

    # a corrupt file is regenerated; an unwritable cache just skips caching
    files[0].write_bytes(b"not a zip")
    fixed, _ = load_faces(12, size=32, seed=4)
    assert np.array_equal(fixed, images)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out, _ = load_faces(3, size=32, seed=4, cache_dir=blocker / "sub")
    assert np.array_equal(out, images[:3])
    nocache, _ = load_faces(3, size=32, seed=4, cache=False, cache_dir=tmp_path / "unused")
    assert np.array_equal(nocache, images[:3]) and not (tmp_path / "unused").exists()


def test_cache_unwritable_is_skipped(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise PermissionError("read-only file system")
    from genlab.engine import io as gio

    monkeypatch.setattr(gio.tempfile, "mkstemp", refuse)   # the cache goes through engine.io's atomic writer
    images, _ = load_faces(2, size=16, cache_dir=tmp_path)
    assert images.shape == (2, 16, 16, 3) and not list(tmp_path.iterdir())


def test_dataset_and_to_tensor(tmp_path):
    ds = FacesDataset(n=6, size=32, seed=5, cache_dir=tmp_path)
    assert len(ds) == 6
    assert ds.images.shape == (6, 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.labels.shape == (6, len(ATTRIBUTES)) and ds.labels.dtype == torch.long
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    x, y = ds[2]
    assert x.shape == (3, 32, 32) and y.shape == (len(ATTRIBUTES),)
    images, attrs = render_faces(range(6), seed=5, size=32)
    assert torch.equal(ds.labels, torch.from_numpy(attrs))
    assert torch.allclose(ds.images, to_tensor(images))
    t = to_tensor(np.array([[[[0, 255, 51]]]], np.uint8))
    assert t.shape == (1, 3, 1, 1) and torch.allclose(t.flatten(), torch.tensor([-1.0, 1.0, -0.6]))


@pytest.mark.parametrize("call", [
    lambda: load_faces(0),
    lambda: load_faces(-3),
    lambda: load_faces(4, size=8),
    lambda: load_faces(4, seed=-1),
    lambda: render_faces([0], size=15),
    lambda: render_faces([0], size=32.0),
    lambda: render_faces([[0, 1]]),
    lambda: render_faces([-1]),
    lambda: render_faces([0.5]),
    lambda: render_faces([0], attributes={"beard": True}),
    lambda: render_faces([0, 1], attributes={"glasses": [1, 0, 1]}),
    lambda: render_faces([0], attributes={"glasses": 2}),
    lambda: to_tensor(np.zeros((4, 4), np.uint8)),
    lambda: to_tensor(np.zeros((2, 4, 4, 3), np.float32)),
])
def test_user_errors(call):
    with pytest.raises(DataError):
        call()


def test_face_parameters_match_rendering():
    from genlab.data.faces import face_parameters

    params, attrs = face_parameters([3, 9], seed=6, attributes={"glasses": True})
    _, rendered_attrs = render_faces([3, 9], seed=6, size=16, attributes={"glasses": True})
    assert np.array_equal(attrs, rendered_attrs) and attrs[:, A["glasses"]].all()
    assert params["hstyle"].shape == (2,) and set(params["hstyle"]) <= set(range(5))
    assert params["hair"].shape == (2, 3) and params["skin"].shape == (2, 3)
    blond = attrs[:, A["blond"]] == 1
    assert np.all(params["hair"][blond].mean(1) > 0.5) and np.all(params["hair"][~blond].mean(1) < 0.25)
