"""Image folders for users' data, the one uint8 <-> float image conversion, and image grids.

A folder of images (any size, any mode) becomes a uint8 array of square
images; sub-folders are classes. Corrupt files are skipped and counted.
"""

from __future__ import annotations

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


# ---------------------------------------------------------------------------------------------
# Conversions. genlab holds images in two forms: uint8 (N, H, W, C) arrays (files, outputs,
# embedded data) and float (N, C, H, W) tensors in [-1, 1] (what models see). These are the
# only functions that convert between them.
# ---------------------------------------------------------------------------------------------
def to_nchw_uint8(images: np.ndarray, channels: int | None = None) -> torch.Tensor:
    """uint8 (N, H, W[, C]) array -> uint8 (N, C, H, W) tensor, optionally converted to
    `channels` (grey -> RGB by repeating, RGB -> grey by ITU-R 601 luma). Stays uint8: large
    image sets take a quarter of the memory of floats."""
    import torch

    a = np.asarray(images)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.dtype != np.uint8 or a.shape[-1] not in (1, 3, 4):
        raise DataError(f"expected uint8 images (N, H, W[, C]) with C in 1, 3, 4; got {a.dtype} {a.shape}")
    if channels == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif channels == 1 and a.shape[-1] == 3:
        a = np.rint(a.astype(np.float32) @ np.array(LUMA, np.float32))[..., None].astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) tensor -> float in [-1, 1]; a float tensor passes through."""
    import torch

    return x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 array (N, H, W[, C]) -> float tensor (N, C, H, W) in [-1, 1]."""
    return to_float(to_nchw_uint8(images)).contiguous()


def to_uint8(images: Any) -> np.ndarray:
    """Float (N, C, H, W) in [-1, 1] or uint8 (N, C, H, W) tensor, float (N, C, H, W) array or
    uint8 (N, H, W[, C]) array -> uint8 (N, H, W, C)."""
    if hasattr(images, "detach"):  # a torch tensor: always NCHW
        t = images.detach().cpu()
        a = (t.float() if t.is_floating_point() else t).numpy()
        if a.ndim == 3:
            a = a[None]
        if a.ndim == 4:
            a = a.transpose(0, 2, 3, 1)
    else:
        a = np.asarray(images)
        if a.dtype.kind == "f":
            a = (a[None] if a.ndim == 3 else a)
            a = a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
        elif a.ndim == 3:  # N grey uint8 images without a channel axis
            a = a[..., None]
    if a.ndim != 4:
        raise ValueError(f"expected a batch of images (4-D), got shape {a.shape}")
    if a.dtype.kind == "f":
        a = np.rint((np.clip(np.nan_to_num(a.astype(np.float32), nan=0.0), -1.0, 1.0) + 1.0) * 127.5)
        a = a.astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"expected uint8 or float images, got dtype {a.dtype}")
    if a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {a.shape}")
    return np.ascontiguousarray(a)


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights: RGB -> grey


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float NCHW -> size x size: area averaging to shrink (no aliasing), bilinear to grow."""
    import torch.nn.functional as F

    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NCHW -> size x size, as `resize` does for floats, rounded back to uint8."""
    import torch

    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return resize(x.float(), size).round().clamp(0, 255).to(torch.uint8)


def set_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Float NCHW: grey -> RGB by repeating, RGB -> grey by luminance (ITU-R 601 weights)."""
    import torch

    if x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.repeat(1, 3, 1, 1)
    if channels == 1 and x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")


# ---------------------------------------------------------------------------------------------
# Grids. The native grid keeps every pixel as generated (what metrics and diffs read); the
# labelled grid is the picture a person opens: cells scaled up by an integer factor with
# nearest-neighbour (no smoothing invents detail), captions for rows, columns and cells.
# ---------------------------------------------------------------------------------------------
MIN_CELL = 64        # px: a cell's side in the labelled picture is at least this (16 px faces x4)
MIN_ROW = 256        # px: and a row of cells at least this wide (a strip of 3 faces is not a thumbnail)
PADDING = 2          # px between cells of the native grid


def image_grid(images: Any, ncol: int = 8, padding: int = PADDING) -> np.ndarray:
    """Images (float NCHW in [-1, 1] or uint8 NHWC) tiled `ncol` per row on black: uint8 (H, W, C)."""
    a = to_uint8(images)
    n, h, w, c = a.shape
    if n == 0:
        raise ValueError("no images to tile")
    ncol = max(1, min(ncol, n))
    nrows = -(-n // ncol)
    grid = np.zeros((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = a[i]
    return grid


def labelled_grid(images: Any, ncol: int = 8, labels: list[str | None] | None = None,
                  row_labels: list[str] | None = None, col_labels: list[str] | None = None, title: str = "",
                  highlight: list[bool] | None = None, min_cell: int = MIN_CELL) -> np.ndarray:
    """The picture users open: images (as in `image_grid`) scaled up by an integer factor (nearest
    neighbour) so each cell is at least `min_cell` px and a row at least MIN_ROW px, on white, with a title line, row labels on the left, column
    labels on top and a caption under each cell (`labels`, multi-line with "\\n"; red where
    `highlight`). Returns uint8 RGB (H, W, 3)."""
    from PIL import Image, ImageDraw

    a = to_uint8(images)
    n, h, w, c = a.shape
    if n == 0:
        raise ValueError("no images to tile")
    if c == 1:
        a = np.repeat(a, 3, axis=-1)
    a = a[..., :3]
    ncol = max(1, min(ncol, n))
    s = max(1, -(-min_cell // min(h, w)), -(-MIN_ROW // (ncol * w)))
    a = a.repeat(s, axis=1).repeat(s, axis=2)
    ch, cw = h * s, w * s
    nrows = -(-n // ncol)
    labels = [lab for lab in (labels or [])] + [None] * n
    captions = [str(lab) for lab in labels[:n] if lab]
    font = _font(max(11, min(16, cw // 6)))
    line = _text_size(font, "Ag")[1] + 3
    cap_h = (max(x.count("\n") + 1 for x in captions) * line + 2) if captions else 0
    gap = 4
    left = (max(_text_size(font, r)[0] for r in row_labels) + 2 * gap) if row_labels else gap
    top = (line + 2 * gap if title else gap) + (line if col_labels else 0)
    # a column is as wide as its image, or as its widest label or caption line (never overlapping)
    texts = list(col_labels or []) + [line_ for c_ in captions for line_ in c_.split("\n")]
    colw = max([cw] + [_text_size(font, t)[0] + gap for t in texts])
    width = left + ncol * (colw + gap)
    if title:
        width = max(width, _text_size(font, title)[0] + 2 * gap)
    height = top + nrows * (ch + cap_h + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, gap // 2), title, fill="black", font=font)
    for j, text in enumerate((col_labels or [])[:ncol]):
        tw = _text_size(font, text)[0]
        draw.text((left + j * (colw + gap) + max(0, (colw - tw) // 2), top - line), text, fill="black", font=font)
    for r, text in enumerate((row_labels or [])[:nrows]):
        draw.text((gap, top + r * (ch + cap_h + gap) + ch // 2 - line // 2), text, fill="black", font=font)
    for i in range(n):
        r, col = divmod(i, ncol)
        x0, y = left + col * (colw + gap), top + r * (ch + cap_h + gap)
        canvas.paste(Image.fromarray(a[i]), (x0 + (colw - cw) // 2, y))
        if labels[i]:
            red = bool(highlight and i < len(highlight) and highlight[i])
            # a caption wider than its image is centred in the column, so it never runs off the picture
            tw = max(_text_size(font, t)[0] for t in str(labels[i]).split("\n"))
            x = x0 + (colw - cw) // 2 if tw <= cw else x0 + max(0, (colw - tw) // 2)
            draw.multiline_text((x, y + ch + 1), str(labels[i]), fill="red" if red else "black", font=font,
                                spacing=3)
    return np.asarray(canvas)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)   # scalable with FreeType (Pillow >= 10.1)
    except TypeError:  # pragma: no cover - an old Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(font: Any, text: str) -> tuple[int, int]:
    box = font.getbbox(text)
    return int(box[2] - box[0]), int(box[3] - box[1])


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, C) as PNG bytes (mode L, RGB or RGBA from the shape)."""
    import io

    from PIL import Image

    a = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def save_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write uint8 pixels as a PNG through genlab's one atomic writer (engine.io)."""
    from ..engine.io import write_bytes

    write_bytes(path, png_bytes(pixels))
    return Path(path)


def save_image_grid(images: Any, path: str | Path, nrow: int = 8, padding: int = PADDING) -> Path:
    """Save images (float NCHW in [-1, 1] or uint8 NHWC) as one native-size PNG grid, `nrow`
    per row, written atomically."""
    return save_png(image_grid(images, nrow, padding), path)
