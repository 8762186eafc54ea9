"""labelwise: turn a messy image dataset into a trustworthy classifier and a clean label set."""

from .data import Dataset, load_dataset, split_table
from .errors import LabelwiseError, MissingExtraError

__version__ = "0.1.0"

__all__ = ["Dataset", "LabelwiseError", "MissingExtraError", "__version__", "load_dataset", "split_table"]
