"""scikit-learn's bundled 8x8 handwritten digits: real images with no download."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def load_digits(size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return (images float32 (N,1,size,size) in [0,1], labels int64 (N,)) of the 1,797 digits.

    size > 8 upsamples bilinearly (e.g. 28 to stand in for MNIST); size < 8 downsamples.
    """
    if not isinstance(size, int) or size < 1:
        raise DataError(f"digits size must be a positive integer, got {size!r}")
    from sklearn.datasets import load_digits as _sk_load_digits  # lazy: sklearn is slow to import

    bunch = _sk_load_digits()
    # Pixel values are integers 0..16.
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    labels = np.asarray(bunch.target, dtype=np.int64)
    if size != 8:
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(images)
        mode = "bilinear" if size > 8 else "area"  # area avoids aliasing when shrinking
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        t = F.interpolate(t, size=(size, size), mode=mode, **kwargs)
        images = t.clamp_(0.0, 1.0).numpy().astype(np.float32, copy=False)
    return np.ascontiguousarray(images), labels
