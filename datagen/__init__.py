"""Environments, behaviour policies, collection and storage of offline multi-agent datasets."""

__version__ = "0.1.0"

from datagen.dataset import Dataset, load_dataset  # noqa: E402

__all__ = ["Dataset", "__version__", "load_dataset"]
