"""Image folders for users' data, and saving grids of generated images.

A folder of images (any size, any mode) becomes a uint8 array of square
images; sub-folders are classes. Corrupt files are skipped and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# Class name of images lying directly in the root when the root also has class sub-folders.
ROOT_CLASS = "."


@dataclass
class ImageFolderData:
    """Images loaded from a folder: uint8 (N,H,W,C), int64 labels, class names, skipped files."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    skipped: int = 0
    skipped_files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def _is_hidden(p: Path, root: Path) -> bool:
    # Skip dot-files and dot-folders (.DS_Store, macOS "._x.jpg" resource forks, .git...).
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not _is_hidden(p, root) and p.is_file())


def _to_8bit(img: Any) -> Any:
    """Scale high-bit-depth single-channel modes (I;16*, I, F) to 8-bit L; PIL's convert would clip."""
    from PIL import Image

    a = np.asarray(img)
    if img.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = a.max() if a.size else 1.0
        # Floats in [0,1] are the usual convention; otherwise assume 8-bit or normalise by the max.
        scale = 255.0 if top <= 1.0 else 1.0 if top <= 255.0 else 255.0 / top
        a = a * scale
    else:  # I;16, I;16B, I;16L, I (16-bit PNGs open as these): full 16-bit range -> 8-bit
        a = a.astype(np.float64) / 257.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))  # 2-D uint8 -> mode L


def _normalize_mode(img: Any, channels: int) -> Any:
    """Convert any PIL mode to RGB (channels=3) or L (channels=1); transparency goes on white."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info)
    if has_alpha:
        if img.mode == "La":  # premultiplied L+alpha has no direct conversion to RGBA
            img = img.convert("LA")
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    target = "RGB" if channels == 3 else "L"
    if img.mode != target:
        if channels == 1 and img.mode not in ("RGB", "RGBA", "1", "P"):
            img = img.convert("RGB")  # e.g. CMYK/YCbCr/LAB -> L needs the RGB step
        img = img.convert(target)
    return img


def _load_one(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode, convert, center-crop and resize one file; raises on any decoding problem."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if img.format == "JPEG":
            # Let libjpeg decode at a reduced scale (still >= size): much faster for big photos.
            img.draft("RGB" if channels == 3 else "L", (size, size))
        img.load()  # actually decode the pixels: truncated/corrupt files fail here, not later
        try:
            img = ImageOps.exif_transpose(img)  # honour camera orientation
        except Exception:  # a malformed EXIF block must not lose an otherwise good image
            pass
        img = _normalize_mode(img, channels)
        w, h = img.size
        if w < 1 or h < 1:
            raise ValueError("empty image")
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + s, top + s),
                         reducing_gap=3.0)
        a = np.asarray(img, dtype=np.uint8)
    return a.reshape(size, size, channels)


def load_image_folder(path: str | Path, size: int = 64, channels: int = 3,
                      max_images: int | None = None) -> ImageFolderData:
    """Load every image under `path` as uint8 (N,size,size,channels), labelled by sub-folder.

    Class names are the sorted sub-folder names; files directly in the root are class 0 when
    there are no sub-folders (otherwise they form the class "."). Corrupt or unreadable files
    are skipped and counted. `max_images` takes files round-robin across classes.
    """
    root = Path(path)
    if not isinstance(size, int) or size < 1:
        raise DataError(f"image size must be a positive integer, got {size!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if max_images is not None and max_images < 1:
        raise DataError(f"max_images must be >= 1, got {max_images}")
    if not root.exists():
        raise DataError(f"image folder not found: {root}")
    if root.is_file():
        if root.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"not an image folder or image file: {root}")
        files = [root]
        by_class: dict[str, list[Path]] = {"": files}
        root = root.parent
    else:
        files = _list_images(root)
        by_class = {}
        for f in files:
            rel = f.relative_to(root)
            by_class.setdefault(rel.parts[0] if len(rel.parts) > 1 else ROOT_CLASS, []).append(f)
    if not files:
        raise DataError(f"no images found in {root} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")

    if set(by_class) == {ROOT_CLASS}:
        class_names = [""]  # a single unnamed class
        by_class = {"": by_class[ROOT_CLASS]}
    else:
        class_names = sorted(by_class)
    label_of = {name: i for i, name in enumerate(class_names)}

    # Visiting order: sorted within each class; round-robin across classes so that a
    # max_images cut keeps every class represented.
    queues = [by_class[name] for name in class_names]
    order = [q[i] for i in range(max(len(q) for q in queues)) for q in queues if i < len(q)]
    labels_by_file = {f: label_of[name] for name in class_names for f in by_class[name]}

    loaded: list[tuple[int, Path, np.ndarray]] = []
    skipped: list[Path] = []
    for f in order:
        if max_images is not None and len(loaded) >= max_images:
            break
        try:
            arr = _load_one(f, size, channels)
        except Exception:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, struct.error... on bad files
            skipped.append(f)
            continue
        loaded.append((labels_by_file[f], f, arr))

    if not loaded:
        raise DataError(f"no readable images in {root}: all {len(skipped)} image files are corrupt or unreadable")
    loaded.sort(key=lambda t: (t[0], str(t[1])))
    images = np.stack([a for _, _, a in loaded]).astype(np.uint8, copy=False)
    labels = np.array([lab for lab, _, _ in loaded], dtype=np.int64)
    return ImageFolderData(images=images, labels=labels, class_names=class_names,
                           skipped=len(skipped), skipped_files=sorted(skipped))


def to_tensor(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 images (N,H,W,C) or (N,H,W) -> float32 tensor (N,C,H,W) in [-1, 1]."""
    import torch

    a = np.asarray(images_uint8)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise ValueError(f"expected images of shape (N,H,W,C) or (N,H,W), got {a.shape}")
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()
    return t.div_(127.5).sub_(1.0).contiguous()


def _as_nhwc_uint8(images: Any) -> np.ndarray:
    """Float NCHW in [-1,1] (tensor or array) or uint8 NHWC array -> uint8 NHWC."""
    try:
        import torch
        if isinstance(images, torch.Tensor):
            images = images.detach().to("cpu", torch.float32).numpy()
            is_float_nchw = True
        else:
            is_float_nchw = False
    except ImportError:  # pragma: no cover - torch is a dependency
        is_float_nchw = False
    a = np.asarray(images)
    if a.ndim == 3:  # a single image, or N grey images without a channel axis
        a = a[None] if (is_float_nchw or a.dtype.kind == "f") else a[..., None]
    if a.ndim != 4:
        raise ValueError(f"expected a batch of images (4-D), got shape {a.shape}")
    if is_float_nchw or a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float32), nan=0.0)
        a = np.rint((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
        a = a.transpose(0, 2, 3, 1)
    elif a.dtype != np.uint8:
        raise ValueError(f"expected uint8 NHWC or float NCHW images, got dtype {a.dtype}")
    if a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {a.shape}")
    return a


def save_image_grid(images: Any, path: str | Path, nrow: int = 8, padding: int = 2) -> Path:
    """Save images as one PNG grid, `nrow` per row, written atomically (temp file + os.replace).

    `images` is a float tensor/array (N,C,H,W) in [-1,1] or a uint8 array (N,H,W,C).
    """
    from PIL import Image

    a = _as_nhwc_uint8(images)
    n, h, w, c = a.shape
    if n == 0:
        raise ValueError("no images to save")
    ncol = max(1, min(nrow, n))
    nrows = -(-n // ncol)
    grid = np.zeros((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = a[i]
    img = Image.fromarray(grid[..., 0] if c == 1 else grid)  # mode L, RGB or RGBA from the shape

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)  # readers see the old grid or the new one, never half a file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
