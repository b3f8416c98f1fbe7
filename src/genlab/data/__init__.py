"""genlab's data layer: embedded toy data, bundled digits, IDX, image folders, text, downloads."""

from .digits import load_digits
from .download import cache_root, download, sha256_file
from .idx import FASHION_MNIST_DIRS, find_fashion_mnist, find_idx_pair, load_idx_dataset, read_idx
from .images import IMAGE_EXTENSIONS, ImageFolderData, load_image_folder, save_image_grid, to_tensor
from .synthetic import curve_points, make_curve_fn, one_hot, pattern_numbers, valid_values
from .text import TextData, check_data_path, read_text

__all__ = [
    "FASHION_MNIST_DIRS", "IMAGE_EXTENSIONS", "ImageFolderData", "TextData",
    "cache_root", "check_data_path", "curve_points", "download", "find_fashion_mnist", "find_idx_pair",
    "load_digits", "load_idx_dataset", "load_image_folder", "make_curve_fn", "one_hot", "pattern_numbers",
    "read_idx", "read_text", "save_image_grid", "sha256_file", "to_tensor", "valid_values",
]

# The procedural faces live in their own module; keep this package importable without it.
try:
    from .faces import ATTRIBUTES, FacesDataset, load_faces, render_faces
except ModuleNotFoundError as e:
    if e.name != f"{__name__}.faces":  # a missing dependency inside faces.py is a real bug
        raise
else:
    __all__ += ["ATTRIBUTES", "FacesDataset", "load_faces", "render_faces"]
