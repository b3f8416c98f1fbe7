"""FID, KID, precision/recall and the feature networks (tiny settings)."""
import json

import numpy as np
import pytest
import torch

from genlab.metrics import feature_net as fn
from genlab.metrics.image import fid, frechet_distance, kid, precision_recall, quality_report


def _gauss(n, d=8, shift=0.0, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * scale + shift


def test_fid_self_is_zero_and_grows_with_shift():
    a = _gauss(2000)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)
    values = [fid(a, _gauss(2000, shift=s, seed=1)) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(values, values[1:]))
    noisy = [fid(a, a + np.random.default_rng(2).normal(size=a.shape) * s) for s in (0.1, 0.5, 1.0)]
    assert noisy[0] < noisy[1] < noisy[2]


def test_fid_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    s1, s2 = rng.uniform(0.5, 2.0, 4), rng.uniform(0.5, 2.0, 4)
    # diagonal covariances: ||mu1 - mu2||^2 + sum (sigma1 - sigma2)^2
    exact = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    assert frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2)) == pytest.approx(exact, rel=1e-10)
    # full covariances: commuting case cov2 = c * cov1 gives tr(cov1) * (1 - sqrt(c))^2
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + 0.1 * np.eye(4)
    assert frechet_distance(mu1, cov, mu1, 4.0 * cov) == pytest.approx(np.trace(cov), rel=1e-8)
    # a singular covariance (rank 1) does not break it
    v = np.ones((4, 1))
    assert frechet_distance(mu1, v @ v.T, mu1, v @ v.T) == pytest.approx(0.0, abs=1e-8)
    # samples approach the closed form
    x = rng.normal(size=(20000, 4)) * s1 + mu1
    y = rng.normal(size=(20000, 4)) * s2 + mu2
    assert fid(x, y) == pytest.approx(exact, rel=0.05)


def test_kid_zero_for_same_distribution_positive_for_shift():
    a, b = _gauss(600), _gauss(600, seed=1)
    same, same_std = kid(a, b, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    shifted, _ = kid(a, _gauss(600, shift=1.0, seed=1), subsets=20, subset_size=200)
    assert shifted > 0.05 and shifted > 10 * abs(same)


def test_precision_recall_subset_and_mode_dropping():
    real = _gauss(1000, d=4)
    p, r = precision_recall(real, real[:300], k=3)
    assert p == pytest.approx(1.0) and r < 1.0
    # four clusters; the fake covers only two of them
    centres = np.array([[10, 0, 0, 0], [-10, 0, 0, 0], [0, 10, 0, 0], [0, -10, 0, 0]], float)
    rng = np.random.default_rng(0)
    real = centres[rng.integers(0, 4, 2000)] + rng.normal(size=(2000, 4))
    full = centres[rng.integers(0, 4, 2000)] + rng.normal(size=(2000, 4))
    dropped = centres[rng.integers(0, 2, 2000)] + rng.normal(size=(2000, 4))
    p_full, r_full = precision_recall(real, full)
    p_drop, r_drop = precision_recall(real, dropped)
    assert p_drop > 0.9 and r_drop < 0.6 < r_full


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fn, "N_FACES_TRAIN", 1500)
    monkeypatch.setattr(fn, "N_FACES_VAL", 300)
    return tmp_path


def test_feature_net_cache_round_trip_is_safetensors(tiny_cache):
    from safetensors import safe_open

    from genlab.data.image_datasets import load_digits_tensors

    net = fn.get_feature_net("digits", 8, 1, steps=15)
    files = list((tiny_cache / "metrics").iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"
    with safe_open(str(files[0]), framework="pt") as f:
        meta = f.metadata()
    assert meta["version"] == net.version and "NOT comparable" in meta["note"]
    assert net.meta["source"].startswith("sklearn digits")   # the embedded data, on every machine
    again = fn.get_feature_net("digits", 8, 1, steps=15)  # read from the cache
    x, _ = load_digits_tensors(8, 1)
    assert again.version == net.version
    assert fn.train_feature_net("digits", 8, 1, steps=15).version == net.version  # deterministic training
    np.testing.assert_allclose(again.features(x[:64]), net.features(x[:64]), rtol=1e-5, atol=1e-6)
    report = quality_report(x[:200], x[200:400], net)
    assert {"fid", "kid", "kid_std", "precision", "recall", "n_fake", "n_real", "fid_lo", "fid_hi"} == set(report)
    assert report["fid"] < quality_report(x[:200], torch.rand(200, 1, 8, 8) * 2 - 1, net)["fid"]


def test_attribute_classifier_on_held_out_faces(tiny_cache):
    from genlab.data.faces import ATTRIBUTES, render_faces
    from genlab.data.images import to_tensor

    clf = fn.get_attribute_classifier(16, steps=120)
    assert clf.attributes == list(ATTRIBUTES)
    acc = clf.accuracy
    assert set(acc) == set(ATTRIBUTES) and acc["blond"] > 0.9
    images, attrs = render_faces(np.arange(200), seed=12345, size=16)
    pred = clf.predict(to_tensor(images))
    assert pred.shape == attrs.shape and set(np.unique(pred)) <= {0, 1}
    assert (pred[:, ATTRIBUTES.index("blond")] == attrs[:, ATTRIBUTES.index("blond")]).mean() > 0.9
    probs = clf.probabilities(to_tensor(images))
    blond = attrs[:, ATTRIBUTES.index("blond")] == 1
    assert probs[blond, 1].mean() > probs[~blond, 1].mean() + 0.5      # the probability follows the hair
    assert np.array_equal(pred, (probs > 0.5).astype(int))
    assert json.loads(clf.net.meta["accuracy"]) == acc
    # the judge is the robust network, cached apart from the FID feature net of the same size
    assert "faces-robust" in clf.version and clf.net.meta["robust"] == "1" and "faces-gate-robust" in clf.version
    assert set(json.loads(clf.net.meta["accuracy_noise_0.1"])) == set(ATTRIBUTES)
    plain = fn.get_feature_net("faces", 16, 3, steps=120)
    assert "robust" not in plain.version and plain.meta["robust"] == "0"
    assert len(list(tiny_cache.rglob("*.safetensors"))) == 3    # judge, gate, FID net


def test_degrade_is_seeded_bounded_and_changes_images():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    a = fn.degrade(x, torch.Generator().manual_seed(0))
    b = fn.degrade(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    assert (a - x).abs().mean() > 0.01          # noise was added
    assert (a - x).abs().mean() < 0.3           # ... but the image is still there


def test_single_class_folder_falls_back_to_faces(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    assert fn._single_class_folder(tmp_path)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "a" / "x.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "b" / "y.png")
    assert not fn._single_class_folder(tmp_path)


def test_digits_and_mnist_are_separate_networks(tiny_cache, shared_data):
    digits = fn.get_feature_net("digits", 8, 1, steps=5)
    mnist = fn.get_feature_net("mnist", 8, 1, steps=5)
    assert digits.meta["source"].startswith("sklearn") and mnist.meta["source"].startswith("MNIST")
    assert "/digits/" in digits.version and "/mnist/" in mnist.version
    # a stale cache file holding the other data set's network is retrained, not reused
    assert not fn._is_current(mnist, 5, "digits") and fn._is_current(digits, 5, "digits")


# -- a broken FID must fail these checks ---------------------------------------------------------
def _correlated(n, rho, seed):
    """2-D features with unit variances and correlation rho (4 copies side by side: d = 8)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho], [rho, 1.0]])
    return np.concatenate([rng.multivariate_normal([0, 0], cov, size=n) for _ in range(4)], 1)


def check_fid(fid_fn) -> None:
    """Raises AssertionError unless fid_fn behaves as the Fréchet distance of the features."""
    rng = np.random.default_rng(0)
    a = _gauss(3000, seed=5)
    assert fid_fn(a, a) == pytest.approx(0.0, abs=1e-6)
    # closed form with full, non-commuting covariances (sampled at n = 20,000)
    m1, m2 = rng.normal(size=3), rng.normal(size=3)
    b1, b2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    c1, c2 = b1 @ b1.T + 0.2 * np.eye(3), b2 @ b2.T + 0.2 * np.eye(3)
    exact = frechet_distance(m1, c1, m2, c2)
    s1 = rng.multivariate_normal(m1, c1, size=20000)
    s2 = rng.multivariate_normal(m2, c2, size=20000)
    assert fid_fn(s1, s2) == pytest.approx(exact, rel=0.05)
    # the same marginals, different correlation: the covariance, not only the variances, counts
    pos, neg = _correlated(4000, 0.8, 1), _correlated(4000, -0.8, 2)
    same = fid_fn(pos, _correlated(4000, 0.8, 3))
    assert fid_fn(pos, neg) > 10 * same + 1.0
    # renaming the feature dimensions identically in both sets changes nothing
    perm = rng.permutation(a.shape[1])
    b = _gauss(3000, shift=0.3, seed=6)
    assert fid_fn(a[:, perm], b[:, perm]) == pytest.approx(fid_fn(a, b), rel=1e-6)


def test_fid_passes_its_checks():
    check_fid(fid)


def _shuffled_features(r, f):    # each column of the fakes shuffled on its own: correlations lost
    rng = np.random.default_rng(0)
    return fid(r, np.stack([rng.permutation(col) for col in np.asarray(f).T], 1))


def _diagonal_covariance(r, f):  # covariance wrong: only the variances
    r, f = np.asarray(r), np.asarray(f)
    return frechet_distance(r.mean(0), np.diag(r.var(0)), f.mean(0), np.diag(f.var(0)))


def _transposed_covariance(r, f):  # covariance wrong: np.cov over the wrong axis, cut to d x d
    r, f = np.asarray(r), np.asarray(f)
    d = r.shape[1]
    return frechet_distance(r.mean(0), np.cov(r[:d])[:d, :d], f.mean(0), np.cov(f[:d])[:d, :d])


def _no_sqrt(r, f):  # tr(S1 + S2 - 2 S1 S2) instead of the matrix square root
    r, f = np.asarray(r), np.asarray(f)
    c1, c2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    d = r.mean(0) - f.mean(0)
    return float(d @ d + np.trace(c1 + c2 - 2 * c1 @ c2))


@pytest.mark.parametrize("broken", [_shuffled_features, _diagonal_covariance, _transposed_covariance, _no_sqrt])
def test_fid_checks_catch_a_broken_fid(broken):
    with pytest.raises(AssertionError):
        check_fid(broken)


def test_quality_report_sizes_interval_and_floor(tiny_cache):
    from genlab.data.image_datasets import load_digits_tensors

    net = fn.get_feature_net("digits", 8, 1, steps=60)
    x, _ = load_digits_tensors(8, 1)
    real, other, noise = x[:400], x[400:800], torch.rand(300, 1, 8, 8) * 2 - 1
    rep = quality_report(real, x[800:1100], net, other_real=other)
    assert (rep["n_fake"], rep["n_real"], rep["n_floor"]) == (300, 400, 300)
    # real vs real: the floor and a real sample agree; the interval brackets the point estimate
    assert 0 < rep["fid_floor"] < 3 * rep["fid"] and rep["fid"] < 3 * rep["fid_floor"]
    assert rep["fid_lo"] < rep["fid_hi"] and rep["fid_lo"] <= rep["fid"] * 1.5
    bad = quality_report(real, noise, net, other_real=other)
    assert bad["fid"] > 5 * bad["fid_floor"] and bad["fid_lo"] > rep["fid_hi"]
    assert bad["fid_floor"] == pytest.approx(rep["fid_floor"])     # the floor depends on n, not on the fakes
    # the floor grows as n shrinks (FID's small-sample bias), which is why it is reported at the same n
    small = quality_report(real, x[800:850], net, other_real=other)
    assert small["fid_floor"] > rep["fid_floor"] and small["n_floor"] == 50
    assert "fid_lo" not in quality_report(real, noise, net, resamples=0)
