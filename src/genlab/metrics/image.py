"""Sample-quality numbers for image generators: FID, KID and precision/recall.

All three compare two sets of *features* (rows of a 2-D array), so they work with any
feature network. genlab uses the small CNNs of `metrics.feature_net`, trained per image
domain: the numbers rank models trained on the same data and are reproducible offline,
but they are NOT comparable with the Inception-v3 FID/KID published in papers.

- FID (Heusel et al. 2017): Fréchet distance between Gaussians fitted to the two sets,
  |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)). Lower is better, 0 for equal fits.
- KID (Bińkowski et al. 2018): unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3,
  averaged over random subsets (mean and std reported). Unbiased: ~0 (can be < 0) when
  both sets come from one distribution, and reliable with a few hundred samples.
- Precision / recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls
  around its points with radius = distance to the k-th nearest neighbour in the same set.
  Precision = share of fakes inside the real manifold (fidelity), recall = share of reals
  inside the fake manifold (coverage; a mode-dropping generator has low recall).

Every number depends on the sample sizes, FID most (it is biased upwards at small n), so
`quality_report` returns them (`n_fake`, `n_real`), a bootstrap interval of the FID, and,
when the caller passes real images outside the reference set, the real-vs-real floor: the
FID/KID that real images themselves score at the same sizes. A difference between two models
smaller than the floor and the interval is noise. KID is the raw MMD^2 (not scaled by 1000).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .feature_net import FeatureNet


def _as_2d(x: Any, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.astype(np.float64, copy=False)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array of features (n, d), got shape {a.shape}")
    if len(a) < 2:
        raise ValueError(f"{name}: need at least 2 feature rows, got {len(a)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: features contain NaN or infinity")
    return a


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via eigh (tiny negative
    eigenvalues from rounding are clipped to 0, so singular covariances are fine)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2), squared.

    tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the
    symmetric PSD matrix S1^(1/2) S2 S1^(1/2) (same spectrum as S1 S2), which avoids the
    complex parts scipy.linalg.sqrtm produces on near-singular inputs.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    s1 = _psd_sqrt(cov1)
    inner = s1 @ cov2 @ s1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)
    return max(value, 0.0)  # rounding can give -1e-12 for identical inputs


def fid(real_feats: Any, fake_feats: Any) -> float:
    """Fréchet distance between Gaussians fitted to real and fake features (lower is better)."""
    r, f = _as_2d(real_feats, "real_feats"), _as_2d(fake_feats, "fake_feats")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    return frechet_distance(r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid(real_feats: Any, fake_feats: Any, subsets: int = 50, subset_size: int | None = None,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 (cubic polynomial kernel), (mean, std) over
    `subsets` random subsets of `subset_size` rows from each set (default min(1000, n / 2) with
    n = min(n_real, n_fake): half, so that the subsets differ and the std means something).
    Subsets are drawn with a fixed `seed`, so the number is deterministic."""
    r, f = _as_2d(real_feats, "real_feats"), _as_2d(fake_feats, "fake_feats")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    m = max(2, min(len(r), len(f), 2000) // 2) if subset_size is None else int(subset_size)
    if not 2 <= m <= min(len(r), len(f)):
        raise ValueError(f"subset_size must be in [2, {min(len(r), len(f))}], got {m}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        x = r[rng.choice(len(r), m, replace=False)]
        y = f[rng.choice(len(f), m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        # unbiased: the diagonals k(x_i, x_i) are left out of the within-set means
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values[i] = within - 2.0 * kxy.mean()
    return float(values.mean()), float(values.std())


def _pairwise(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([torch.cdist(a[i:i + chunk], b) for i in range(0, len(a), chunk)])


def _kth_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row of the same set."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # +1: the row itself is at distance 0
    return torch.cat(out)


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> float:
    """Share of `points` inside at least one ball (centre, radius)."""
    inside = 0
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i:i + chunk], centres)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / len(points)


def precision_recall(real_feats: Any, fake_feats: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds."""
    r, f = _as_2d(real_feats, "real_feats"), _as_2d(fake_feats, "fake_feats")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    if not 1 <= k < min(len(r), len(f)):
        raise ValueError(f"k must be in [1, {min(len(r), len(f)) - 1}], got {k}")
    rt, ft = torch.from_numpy(r), torch.from_numpy(f)
    precision = _coverage(ft, rt, _kth_radius(rt, k))
    recall = _coverage(rt, ft, _kth_radius(ft, k))
    return precision, recall


def fid_interval(real_feats: Any, fake_feats: Any, resamples: int = 100, level: float = 0.9,
                 seed: int = 0) -> tuple[float, float]:
    """Bootstrap percentile interval of the FID: both sets resampled with replacement
    `resamples` times. It shows how much the number moves with the particular samples drawn
    (resampling repeats rows, so the interval sits a little above the point estimate)."""
    r, f = _as_2d(real_feats, "real_feats"), _as_2d(fake_feats, "fake_feats")
    rng = np.random.default_rng(seed)
    values = [fid(r[rng.integers(0, len(r), len(r))], f[rng.integers(0, len(f), len(f))])
              for _ in range(resamples)]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def real_floor(real_feats: Any, other_real_feats: Any, n: int, kid_subsets: int = 50) -> dict[str, float]:
    """What a perfect generator would score: FID and KID of `n` other real images (not in the
    reference set) against the reference set, i.e. the noise floor at this sample size.
    Differences between models smaller than this floor are not evidence."""
    r, o = _as_2d(real_feats, "real_feats"), _as_2d(other_real_feats, "other_real_feats")
    o = o[:n]
    return {"fid_floor": fid(r, o), "kid_floor": kid(r, o, subsets=kid_subsets)[0], "n_floor": float(len(o))}


def quality_report(real_images: torch.Tensor, fake_images: torch.Tensor, net: "FeatureNet",
                   k: int = 3, kid_subsets: int = 50, other_real: torch.Tensor | None = None,
                   resamples: int = 100) -> dict[str, float]:
    """FID, KID (mean and std), precision and recall of fake vs real images (float NCHW in
    [-1, 1]) in the feature space of `net` (see metrics.feature_net.get_feature_net), with the
    sample sizes (`n_fake`, `n_real`), a 90% bootstrap interval of the FID (`fid_lo`, `fid_hi`;
    resamples=0 leaves it out) and, given `other_real` (real images outside the reference set,
    e.g. training images), the real-vs-real floor at the same sizes (`fid_floor`, `kid_floor`,
    `n_floor`: see real_floor)."""
    rf, ff = net.features(real_images), net.features(fake_images)
    kid_mean, kid_std = kid(rf, ff, subsets=kid_subsets)
    precision, recall = precision_recall(rf, ff, k=min(k, len(rf) - 1, len(ff) - 1))
    out = {"fid": fid(rf, ff), "kid": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall,
           "n_fake": float(len(ff)), "n_real": float(len(rf))}
    if resamples:
        out["fid_lo"], out["fid_hi"] = fid_interval(rf, ff, resamples)
    if other_real is not None and len(other_real) >= 2:
        out.update(real_floor(rf, net.features(other_real[:len(ff)]), len(ff), kid_subsets))
    return out
