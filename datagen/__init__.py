"""Environments, behaviour policies, collection and storage of offline multi-agent datasets."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Dataset", "__version__", "load_dataset"]

#: The public names and the module each lives in, imported on first use so that `import datagen`
#: stays cheap (no numpy, h5py or PettingZoo until a dataset is opened).
_LAZY = {"Dataset": "datagen.dataset.reader", "load_dataset": "datagen.fetch"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'datagen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
