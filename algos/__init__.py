"""Offline multi-agent algorithms trained on frozen datasets, each able to act for any team size.

- `algos.data`: datasets in RAM (`OfflineData`) and named batches (`Batch`);
- `algos.networks`: per-agent encoders (MLP, CNN, set attention) without agent ids;
- `algos.functional`: the pure functions algorithms share (masked argmax, TD targets, CQL, KL, MMD);
- `algos.base`: `Algorithm`, the one base class, and `AlgoConfig`;
- `algos.registry`: every algorithm by name;
- `algos.train`: `fit`, the one training loop.

See docs/algorithms.md.
"""
