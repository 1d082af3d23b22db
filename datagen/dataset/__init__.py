"""Dataset storage: the format, its two backends, opening datasets by id or path, and the registry
of published datasets. Fetching, rebuilding and publishing sit above storage: `datagen.fetch`,
`datagen.recipes`, `datagen.publishing`."""

from datagen.dataset.ids import DatasetId, data_home
from datagen.dataset.reader import Dataset, Transitions, local_datasets, open_dataset, resolve
from datagen.dataset.registry import load_registry

__all__ = [
    "Dataset",
    "DatasetId",
    "Transitions",
    "data_home",
    "load_registry",
    "local_datasets",
    "open_dataset",
    "resolve",
]
