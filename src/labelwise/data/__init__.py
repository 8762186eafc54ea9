"""Dataset tables: readers, image checks, duplicates and splits."""

from .duplicates import find_duplicates
from .images import (
    IMAGE_EXTENSIONS,
    ImageInfo,
    inspect_image,
    iter_image_info,
    open_image,
    read_bytes,
)
from .natural import natural_key, natural_sorted
from .options import ReadOptions
from .readers import (
    load_dataset,
    read_csv_labels,
    read_image_files,
    read_image_folder,
    read_npz,
    read_ordered_labels,
    read_table,
)
from .splitting import split, split_table
from .table import (
    CLASSES_FILE,
    SPLITS,
    TABLE_COLUMNS,
    Dataset,
    build_dataset,
    read_classes,
)

__all__ = [
    "CLASSES_FILE",
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "TABLE_COLUMNS",
    "Dataset",
    "ReadOptions",
    "ImageInfo",
    "build_dataset",
    "find_duplicates",
    "inspect_image",
    "iter_image_info",
    "load_dataset",
    "natural_key",
    "natural_sorted",
    "open_image",
    "read_bytes",
    "read_classes",
    "read_csv_labels",
    "read_image_files",
    "read_image_folder",
    "read_npz",
    "read_ordered_labels",
    "read_table",
    "split",
    "split_table",
]
