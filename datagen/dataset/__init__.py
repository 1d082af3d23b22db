"""The dataset format, its two storage backends, reading datasets by id or path, and published
datasets (registry, download, publish)."""

from datagen.dataset.ids import DatasetId, data_home
from datagen.dataset.reader import Dataset, Transitions, load_dataset, local_datasets, resolve
from datagen.dataset.registry import download, load_registry, publish

__all__ = [
    "Dataset",
    "DatasetId",
    "Transitions",
    "data_home",
    "download",
    "load_dataset",
    "load_registry",
    "local_datasets",
    "publish",
    "resolve",
]
