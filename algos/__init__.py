"""Offline multi-agent algorithms trained on frozen datasets, each able to act for any team size."""
