"""Several annotators: import their answers, aggregate them into one label per image, score
each annotator, write the next batch of labeling tasks, and spread labels by neighbours.

``importers`` (Label Studio, Toloka, CSV → one long ``task, worker, label`` table),
``methods`` (the aggregation methods and their registry), ``annotators`` (per-worker scores, agreement),
``consensus`` (the ``aggregate`` command's outputs), ``tasks`` (Label Studio / Toloka task
files with gold splits and honeypots) and ``propagate`` (kNN label spreading).
"""

from .annotators import annotator_table, fleiss_kappa, krippendorff_alpha
from .consensus import aggregate_answers
from .importers import FORMATS, Answers, image_key, read_answers, read_gold
from .methods import (
    DEFAULT_METHOD,
    Aggregation,
    aggregate_labels,
    dawid_skene,
    encode,
    get_method,
    list_methods,
    register_method,
)
from .propagation import knn_propagate, propagate, propagate_dataset
from .tasks import (
    label_studio_tasks,
    labeling_config,
    make_tasks,
    mix_honeypots,
    split_gold,
    write_toloka_tsv,
)

__all__ = [
    "DEFAULT_METHOD",
    "FORMATS",
    "Aggregation",
    "Answers",
    "aggregate_labels",
    "aggregate_answers",
    "annotator_table",
    "dawid_skene",
    "encode",
    "fleiss_kappa",
    "get_method",
    "image_key",
    "knn_propagate",
    "krippendorff_alpha",
    "label_studio_tasks",
    "labeling_config",
    "list_methods",
    "make_tasks",
    "mix_honeypots",
    "propagate",
    "propagate_dataset",
    "read_answers",
    "read_gold",
    "register_method",
    "split_gold",
    "write_toloka_tsv",
]
