"""Environments, behaviour policies, collection and storage of offline multi-agent datasets."""

__version__ = "0.1.0"
