"""Per-agent networks that act for any number of agents.

Every network here is applied to each agent separately with the same parameters (parameter
sharing) and sees nothing but that agent's observation: no one-hot agent id, no padding to a
maximum team size, so a model trained on 2 agents runs unchanged on 32. An `AgentNetwork` folds the
agent axis into the batch axis, encodes, and unfolds: (B, N, *obs_shape) -> (B, N, outputs).

Encoders (each maps (M, *obs_shape) -> (M, hidden_size), observations normalised inside, so a
checkpoint carries its own normalisation):

- `MLPEncoder`: vector observations, or small float grids flattened (pursuit's (7, 7, 3));
- `CNNEncoder`: images (H, W, C), uint8 scaled by 1/255 — the Nature-DQN stack for images of at
  least 36 pixels a side, two 3x3 convolutions for smaller ones;
- `SetEncoder`: a set of entity rows (R, F) of any R (knights_archers_zombies' vector observation,
  one row per entity, the agent itself first, all-zero rows for absent entities). Each row is
  embedded by a shared MLP and the agent's own row attends over the present rows (masked softmax);
  the result does not depend on R or on the order of the other rows.

The actor-critics (SAC, BRAC, BEAR) also share `TwinQ`, two independent `AgentNetwork` critics, and
`PositiveScalar`, a learned temperature or Lagrange multiplier.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from algos.data import DataSpec
from datagen.errors import UserError

#: Encoder kinds accepted by `make_encoder` ("auto" chooses from the observation shape).
ENCODER_KINDS = ("auto", "mlp", "cnn", "set")

#: Float grids with at most this many values are flattened into the MLP instead of a CNN.
MAX_MLP_GRID = 1024


class Normalizer(nn.Module):
    """(x − mean) / std with statistics stored as buffers (saved in checkpoints)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, np.float32)))

    def forward(self, obs: Tensor) -> Tensor:
        return (obs.float() - self.mean) / self.std


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU after each one."""
    layers: list[nn.Module] = []
    for size_in, size_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(size_in, size_out), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Two hidden layers over the flattened observation: (M, *obs_shape) -> (M, hidden_size)."""

    def __init__(self, spec: DataSpec, hidden_size: int) -> None:
        super().__init__()
        self.normalize = Normalizer(spec.obs_mean, spec.obs_std)
        self.n_obs_dims = len(spec.obs_shape)
        self.body = mlp([int(np.prod(spec.obs_shape)), hidden_size, hidden_size])

    def forward(self, obs: Tensor) -> Tensor:
        return self.body(self.normalize(obs).flatten(start_dim=1))  # (M, prod(obs_shape))


class CNNEncoder(nn.Module):
    """Convolutions over an (H, W, C) image, then a linear layer: (M, H, W, C) -> (M, hidden)."""

    def __init__(self, spec: DataSpec, hidden_size: int) -> None:
        super().__init__()
        height, width, channels = spec.obs_shape
        self.normalize = Normalizer(spec.obs_mean, spec.obs_std)
        if min(height, width) >= 36:  # Mnih et al. 2015 (Nature DQN)
            convs = [
                nn.Conv2d(channels, 32, 8, stride=4),
                nn.ReLU(),
                nn.Conv2d(32, 64, 4, stride=2),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=1),
                nn.ReLU(),
            ]
        else:
            convs = [
                nn.Conv2d(channels, 32, 3, stride=1, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, stride=2, padding=1),
                nn.ReLU(),
            ]
        self.convs = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, channels, height, width)).shape[1]
        self.head = mlp([n_flat, hidden_size])

    def forward(self, obs: Tensor) -> Tensor:
        images = self.normalize(obs).permute(0, 3, 1, 2)  # (M, H, W, C) -> (M, C, H, W)
        return self.head(self.convs(images))


class SetEncoder(nn.Module):
    """Attention pooling over entity rows: (M, R, F) -> (M, hidden_size), for any R.

    Row 0 is the agent itself (the query) and is always attended to, so an agent whose rows are
    all zero (dead, or an empty view) still gets a finite encoding.
    """

    def __init__(self, spec: DataSpec, hidden_size: int) -> None:
        super().__init__()
        n_features = spec.obs_shape[-1]
        self.normalize = Normalizer(spec.obs_mean, spec.obs_std)
        self.rows = mlp([n_features, hidden_size, hidden_size])
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.out = mlp([2 * hidden_size, hidden_size])
        self.scale = 1.0 / math.sqrt(hidden_size)

    def attention(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(row embeddings (M, R, H), attention weights of the own row over rows (M, R))."""
        present = (obs != 0).any(dim=-1)  # (M, R), decided on the raw rows
        present[:, 0] = True
        rows = self.rows(self.normalize(obs))  # (M, R, H)
        scores = torch.einsum("mh,mrh->mr", self.query(rows[:, 0]), self.key(rows)) * self.scale
        weights = torch.softmax(scores.masked_fill(~present, float("-inf")), dim=-1)  # (M, R)
        return rows, weights

    def forward(self, obs: Tensor) -> Tensor:
        rows, weights = self.attention(obs)
        pooled = torch.einsum("mr,mrh->mh", weights, self.value(rows))  # (M, H)
        return self.out(torch.cat([rows[:, 0], pooled], dim=-1))


def encoder_kind(spec: DataSpec, kind: str = "auto") -> str:
    """The encoder used for `spec`'s observations: `kind`, or the one chosen by shape when "auto".

    Raises:
        UserError: an unknown kind, or one that cannot read these observations.
    """
    if kind not in ENCODER_KINDS:
        raise UserError(f"unknown encoder {kind!r}; valid encoders: {', '.join(ENCODER_KINDS)}")
    rank = len(spec.obs_shape)
    if kind == "auto":
        if rank == 2:
            return "set"
        if rank == 3 and (spec.obs_dtype == "uint8" or np.prod(spec.obs_shape) > MAX_MLP_GRID):
            return "cnn"
        return "mlp"
    valid = {"mlp": rank in (1, 3), "cnn": rank == 3, "set": rank == 2}
    if not valid[kind]:
        raise UserError(f"encoder {kind!r} cannot read observations of shape {spec.obs_shape}")
    return kind


def make_encoder(spec: DataSpec, hidden_size: int, kind: str = "auto") -> nn.Module:
    """An encoder (M, *obs_shape) -> (M, hidden_size) for `spec`'s observations (`encoder_kind`)."""
    classes = {"mlp": MLPEncoder, "cnn": CNNEncoder, "set": SetEncoder}
    return classes[encoder_kind(spec, kind)](spec, hidden_size)


class AgentNetwork(nn.Module):
    """A shared encoder and a linear head applied to every agent: (B, N, *O) -> (B, N, outputs).

    Used for Q-values (outputs = A) and policy logits (outputs = A). `features` gives the
    per-agent embeddings (B, N, hidden_size), e.g. for a mixer that attends over agents.
    """

    def __init__(
        self, spec: DataSpec, n_outputs: int, hidden_size: int, encoder: str = "auto"
    ) -> None:
        super().__init__()
        self.n_obs_dims = len(spec.obs_shape)
        self.encoder = make_encoder(spec, hidden_size, encoder)
        self.head = nn.Linear(hidden_size, n_outputs)

    def features(self, obs: Tensor) -> Tensor:
        batch_shape = obs.shape[: obs.dim() - self.n_obs_dims]  # (B, N)
        flat = obs.reshape(-1, *obs.shape[len(batch_shape) :])  # (B * N, *O)
        return self.encoder(flat).reshape(*batch_shape, -1)  # (B, N, H)

    def forward(
        self, obs: Tensor, alive: Tensor | None = None, positions: Tensor | None = None
    ) -> Tensor:
        """(B, N, *O) -> (B, N, outputs); `alive` and `positions` are ignored (each agent acts on
        its own), so a `GraphNetwork` and an `AgentNetwork` are called alike."""
        return self.head(self.features(obs))  # (B, N, outputs)


class TwinQ(nn.Module):
    """Two independent Q networks (own encoders), as SAC, BRAC and BEAR use them:
    (B, N, *obs_shape) -> (2, B, N, A)."""

    def __init__(self, spec: DataSpec, hidden_size: int, encoder: str = "auto") -> None:
        super().__init__()
        self.q1 = AgentNetwork(spec, spec.n_actions, hidden_size, encoder)
        self.q2 = AgentNetwork(spec, spec.n_actions, hidden_size, encoder)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.stack([self.q1(obs), self.q2(obs)])  # (2, B, N, A)


class PositiveScalar(nn.Module):
    """A positive scalar learned through its logarithm `log_value` (an entropy temperature α, a
    Lagrange multiplier λ): `forward()` returns exp(log_value)."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.log_value = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        return self.log_value.exp()


def check_obs_shape(spec: DataSpec, obs_shape: tuple[int, ...], where: str) -> None:
    """Raise when observations of `obs_shape` cannot be read by a model built for `spec`.

    Entity rows may differ in count (the set encoder reads any number); everything else must match.

    Raises:
        UserError: naming `where` the observations come from and both shapes.
    """
    obs_shape = tuple(obs_shape)
    if spec.is_entity_rows and len(obs_shape) == 2 and obs_shape[1:] == spec.obs_shape[1:]:
        return
    if obs_shape != tuple(spec.obs_shape):
        raise UserError(
            f"{where} gives observations of shape {obs_shape}, but the model was trained on "
            f"{tuple(spec.obs_shape)}"
        )
