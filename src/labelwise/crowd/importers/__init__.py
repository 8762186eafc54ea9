"""Crowd answers from Label Studio, Toloka and plain CSV files, as one long table (:class:`Answers`).

One module per format (:mod:`.labelstudio`, :mod:`.toloka`, :mod:`.long_csv`); :mod:`.matching`
finds the image files the answers name; :mod:`.read` holds the entry points.
"""

from ._collector import ANSWER_COLUMNS, FORMATS, Answers, Format
from .labelstudio import image_key
from .read import read_answers, read_gold

__all__ = ["ANSWER_COLUMNS", "FORMATS", "Answers", "Format", "image_key", "read_answers", "read_gold"]
