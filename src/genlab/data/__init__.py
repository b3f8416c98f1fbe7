"""genlab's data layer: embedded toy data, procedural faces, bundled digits, IDX, image folders and
image conversion and grids, text, downloads.
(The torch-side image datasets live in data.image_datasets, imported on use.)"""

from .digits import load_digits
from .download import cache_root, download, sha256_file
from .faces import ATTRIBUTES, FacesDataset, load_faces, render_faces
from .idx import FASHION_MNIST_DIRS, find_fashion_mnist, find_idx_pair, load_idx_dataset, read_idx
from .images import (IMAGE_EXTENSIONS, ImageFolderData, image_grid, labelled_grid, load_image_folder, save_image_grid,
                     to_float, to_tensor, to_uint8)
from .synthetic import curve_points, make_curve_fn, one_hot, pattern_numbers, valid_values
from .text import TextData, check_data_path, read_text

__all__ = [
    "ATTRIBUTES", "FacesDataset", "load_faces", "render_faces",
    "FASHION_MNIST_DIRS", "IMAGE_EXTENSIONS", "ImageFolderData", "TextData",
    "cache_root", "check_data_path", "curve_points", "download", "find_fashion_mnist", "find_idx_pair",
    "image_grid", "labelled_grid", "load_digits", "load_idx_dataset", "load_image_folder", "make_curve_fn",
    "one_hot", "pattern_numbers",
    "read_idx", "read_text", "save_image_grid", "sha256_file", "to_float", "to_tensor", "to_uint8",
    "valid_values",
]
