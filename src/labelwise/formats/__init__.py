"""Formats several layers share: probability tables, labeling-tool files and the training-run folder."""

from .labeling import (
    common_base,
    image_url,
    label_studio_tasks,
    labeling_config,
    write_toloka_tsv,
)
from .probabilities import (
    PROB_PREFIX,
    checked_probabilities,
    prob_columns,
    probability_table,
    read_probability_table,
)
from .train_run import TrainRun

__all__ = [
    "PROB_PREFIX",
    "TrainRun",
    "checked_probabilities",
    "common_base",
    "image_url",
    "label_studio_tasks",
    "labeling_config",
    "prob_columns",
    "probability_table",
    "read_probability_table",
    "write_toloka_tsv",
]
