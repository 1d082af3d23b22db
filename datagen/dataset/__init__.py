"""The dataset format, its two storage backends, and reading datasets by id or path."""

from datagen.dataset.ids import DatasetId, data_home
from datagen.dataset.reader import Dataset, Transitions, load_dataset, local_datasets, resolve

__all__ = [
    "Dataset",
    "DatasetId",
    "Transitions",
    "data_home",
    "load_dataset",
    "local_datasets",
    "resolve",
]
