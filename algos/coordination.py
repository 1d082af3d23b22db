"""Message passing over a coordination graph of agents, for any team size.

Each agent is a node; its neighbours are the k nearest alive agents of its team by position, itself
included when it is alive (`neighbourhoods`), optionally only those within the env's view radius
(`graph_neighbourhood = "in-view"`, still at most k). A round of message passing is multi-head
scaled dot-product attention (Vaswani et al. 2017) of each agent over its neighbours, added back
to the agent's features and layer-normalised (the attention half of a post-norm Transformer layer;
the feed-forward half is left out: its two more hidden × hidden layers per agent doubled the cost of
a round on our CPUs, and the encoder before it and the head after it already give each agent its
own non-linear transform). The parameters act on one agent or one pair of agents at a time, so the
same weights run for 2 or 32 agents; this is the graph-attention communication of DGN (Jiang et
al. 2020, "Graph Convolutional Reinforcement Learning"), whose relation kernel is the same attention
block over each agent's nearest neighbours, and of G2ANet / MAGIC.

Why a bounded neighbourhood: over every alive teammate, messages cost O(N²·H) per round and an
agent hears teammates across the map. Here each agent gathers the keys and values of its k
neighbours only, (B, N, k, H), so messages cost O(N·k·H): linear in the team size. Choosing the k
nearest is not: it takes the (B, N, N) matrix of 2-d distances and a sort of each row, cheap next
to the messages (two coordinates per pair, no hidden width) but quadratic in N all the same.
Positions come from the data (`positions`, dataset format 3 on) and, when acting, from the env;
they decide only who hears whom and are never an input feature (the observations stay egocentric).
With k at least the team size (or 0, the whole team whatever its size) and no view radius every
agent hears every alive teammate: the round then runs the dense attention over the whole team,
exactly the complete graph, and needs no positions. Otherwise positions are required: without them
(data collected before format 3) the network raises a `UserError` instead of quietly hearing
everyone.

Dead and padded agents neither send nor receive anything that reaches an alive agent: they are in
nobody's neighbourhood (their features still flow through the layer so that the output keeps its
shape, but an alive agent's output does not depend on them). The mask rule is
`algos.functional.masked_attention`'s, shared with QMIX's mixer: an agent attends to its
neighbours only, and one with no neighbour (a next observation after the team's end) attends to
nobody: its attention output is 0, so everything stays finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from algos.data import DataSpec, OfflineData
from algos.functional import masked_attention
from algos.networks import AgentNetwork
from datagen.errors import UserError

#: Whom an agent hears: its k nearest alive teammates, or those of them within the view radius.
NEIGHBOURHOODS = ("nearest", "in-view")


@dataclass(frozen=True)
class Neighbourhoods:
    """Whom every agent of B teams of N agents hears in a round (K = min(k, N) per agent).

    Attributes:
        index: (B, N, K) int64, the agents each agent gathers messages from, nearest first; None
            for the complete graph (every agent hears every alive agent).
        allowed: (B, N, K) bool, the gathered agent is a neighbour (alive, and in view when the
            neighbourhood is cut by a radius); with `index` None, (B, N) alive.
    """

    index: Tensor | None
    allowed: Tensor


def neighbourhoods(
    alive: Tensor,
    positions: Tensor | None,
    n_neighbours: int,
    view_radius: float | None = None,
) -> Neighbourhoods:
    """Each agent's neighbours: its `n_neighbours` nearest alive teammates by Euclidean distance,
    itself first when alive, ties broken by agent index; with `view_radius`, only those at a
    distance of at most the radius.

    Args:
        alive: (B, N) bool.
        positions: (B, N, 2) positions, or None when the data has none.
        n_neighbours: k, the agent itself included; 0: the whole team.
        view_radius: the in-view cut, in the units of `positions`; None: the k nearest.

    Returns:
        The complete graph when k covers the team and there is no radius (positions are not
        needed), else the gathered neighbourhoods.

    Raises:
        UserError: positions are needed (k < N, or a view radius) and missing.
    """
    n_agents = alive.shape[1]
    k = n_agents if n_neighbours == 0 else min(n_neighbours, n_agents)
    if view_radius is None and k == n_agents:
        return Neighbourhoods(None, alive)
    if positions is None:
        cut = "in view" if view_radius is not None else "nearest"
        raise UserError(
            f"the coordination graph hears the {k} {cut} of {n_agents} agents, which needs "
            "every agent's position, and these observations come without (datasets record "
            "positions from format 3 on); set graph_neighbours=0 and "
            "graph_neighbourhood=nearest to hear the whole team"
        )
    positions = positions.float()
    distances = (positions[:, :, None] - positions[:, None]).norm(dim=-1)  # (B, N, N)
    itself = torch.eye(n_agents, dtype=torch.bool, device=alive.device)
    distances = distances.masked_fill(itself, -1.0)  # itself first, even beside a teammate
    hidden = ~alive[:, None, :]  # (B, 1, N): the dead are nobody's neighbours
    if view_radius is not None:
        hidden = hidden | (distances > view_radius)
    distances = distances.masked_fill(hidden, float("inf"))
    nearest, index = torch.sort(distances, dim=-1, stable=True)  # ties: the lower index first
    return Neighbourhoods(index[..., :k], torch.isfinite(nearest[..., :k]))


def check_positions(data: OfflineData, n_neighbours: int, neighbourhood: str) -> None:
    """Raise when the coordination graph needs positions that some of `data`'s datasets lack:
    always with the in-view neighbourhood, and with the nearest when k is below the team size.

    Raises:
        UserError: naming the datasets without positions.
    """
    whole_team = n_neighbours == 0 or n_neighbours >= data.n_agents
    if (neighbourhood == "nearest" and whole_team) or not data.without_positions:
        return
    k = "all" if n_neighbours == 0 else n_neighbours
    raise UserError(
        f"the coordination graph ({k} {neighbourhood} of {data.n_agents} agents) needs agent "
        f"positions, which {', '.join(data.without_positions)} do not record (collected before "
        "dataset format 3): collect them again, or set graph_neighbours=0 and "
        "graph_neighbourhood=nearest to hear the whole team"
    )


def cat_positions(first: Tensor | None, second: Tensor | None) -> Tensor | None:
    """`torch.cat` of two batches' positions along the batch axis; None when either has none."""
    if first is None or second is None:
        return None
    return torch.cat([first, second])


class GraphAttention(nn.Module):
    """One round of multi-head attention over neighbours, with a residual and layer norm.

    Args:
        hidden_size: feature width H (divisible by `n_heads`).
        n_heads: attention heads.
    """

    def __init__(self, hidden_size: int, n_heads: int) -> None:
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by {n_heads} heads")
        self.n_heads = n_heads
        self.head_size = hidden_size // n_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size)

    def weights(self, features: Tensor, neighbours: Neighbourhoods) -> Tensor:
        """Attention weights, (B, heads, N, N) over the complete graph or (B, heads, N, K) over
        the gathered neighbours; each row sums to one over the agent's neighbours (all 0 for an
        agent with none)."""
        return self._attend(features, neighbours)[1]

    def _attend(self, features: Tensor, neighbours: Neighbourhoods) -> tuple[Tensor, Tensor]:
        batch, n_agents, hidden = features.shape
        heads = self.qkv(features).reshape(batch, n_agents, 3, self.n_heads, self.head_size)
        if neighbours.index is None:
            query, key, value = heads.permute(2, 0, 3, 1, 4)  # each (B, heads, N, head_size)
        else:
            query = heads[:, :, 0].transpose(1, 2)  # (B, heads, N, head_size)
            teams = torch.arange(batch, device=features.device)[:, None, None]
            gathered = heads[:, :, 1:][teams, neighbours.index]  # (B, N, K, 2, heads, head_size)
            key, value = gathered.permute(3, 0, 4, 1, 2, 5)  # each (B, heads, N, K, head_size)
        attended, weights = masked_attention(query, key, value, neighbours.allowed)
        messages = attended.transpose(1, 2).reshape(batch, n_agents, hidden)  # (B, N, H)
        return self.out(messages), weights

    def forward(self, features: Tensor, neighbours: Neighbourhoods) -> Tensor:
        """(B, N, H) features -> (B, N, H) features after one round over `neighbours`."""
        messages, _ = self._attend(features, neighbours)
        return self.norm(features + messages)


class CoordinationGraph(nn.Module):
    """`n_rounds` rounds of `GraphAttention` (separate weights per round); 0 rounds is the identity.

    The neighbourhoods are chosen once per forward (`neighbourhoods`) and kept for every round.
    With two rounds an agent's features depend on its neighbours' neighbours as well.

    Args:
        hidden_size: feature width.
        n_heads: attention heads per round.
        n_rounds: rounds of message passing.
        n_neighbours: k, the largest neighbourhood, the agent itself included; 0: the whole team.
        view_radius: only neighbours within this distance; None: the k nearest.
    """

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        n_rounds: int,
        n_neighbours: int,
        view_radius: float | None = None,
    ) -> None:
        super().__init__()
        self.rounds = nn.ModuleList(GraphAttention(hidden_size, n_heads) for _ in range(n_rounds))
        self.n_neighbours = n_neighbours
        self.view_radius = view_radius

    def forward(self, features: Tensor, alive: Tensor, positions: Tensor | None = None) -> Tensor:
        """(B, N, H), (B, N) bool and (B, N, 2) positions (or None) -> (B, N, H)."""
        if not self.rounds:
            return features
        neighbours = neighbourhoods(alive, positions, self.n_neighbours, self.view_radius)
        for round_ in self.rounds:
            features = round_(features, neighbours)
        return features


class GraphNetwork(nn.Module):
    """Shared per-agent encoder, message passing over each agent's neighbours, and a linear head.

    (B, N, *obs_shape) observations, (B, N) alive and (B, N, 2) positions -> (B, N, n_outputs).
    With `n_rounds` = 0 it is exactly an `AgentNetwork` (independent agents), which is what the
    no-graph ablation uses.

    Args:
        spec: the data spec (observation shape, normalisation, the env's view radius).
        n_outputs: outputs per agent.
        hidden_size: width of the encoder and of the messages.
        encoder: encoder kind (see `algos.networks.ENCODER_KINDS`).
        n_heads: attention heads per round.
        n_rounds: rounds of message passing.
        n_neighbours: k, the largest neighbourhood, the agent itself included; 0: the whole team.
        neighbourhood: one of `NEIGHBOURHOODS`: the k nearest, or those of them in view (within
            `spec.view_radius`).

    Raises:
        UserError: message passing over the in-view neighbourhood with a spec that has no view
            radius.
    """

    def __init__(
        self,
        spec: DataSpec,
        n_outputs: int,
        hidden_size: int,
        encoder: str,
        n_heads: int,
        n_rounds: int,
        n_neighbours: int,
        neighbourhood: str,
    ) -> None:
        super().__init__()
        view_radius = spec.view_radius if neighbourhood == "in-view" else None
        if neighbourhood == "in-view" and n_rounds > 0 and view_radius is None:
            raise UserError(
                "graph_neighbourhood=in-view needs the env's view radius, which the data does "
                "not record (datasets record it from format 3 on)"
            )
        self.agents = AgentNetwork(spec, n_outputs, hidden_size, encoder)
        self.graph = CoordinationGraph(hidden_size, n_heads, n_rounds, n_neighbours, view_radius)

    def features(self, obs: Tensor, alive: Tensor, positions: Tensor | None = None) -> Tensor:
        """(B, N, H) per-agent features after message passing."""
        return self.graph(self.agents.features(obs), alive, positions)

    def forward(self, obs: Tensor, alive: Tensor, positions: Tensor | None = None) -> Tensor:
        return self.agents.head(self.features(obs, alive, positions))  # (B, N, n_outputs)


def team_network(
    spec: DataSpec,
    n_outputs: int,
    hidden_size: int,
    encoder: str,
    n_heads: int,
    n_rounds: int,
    n_neighbours: int,
    neighbourhood: str,
) -> AgentNetwork | GraphNetwork:
    """The per-agent network of an algorithm that may communicate: a `GraphNetwork` with
    `n_rounds` of message passing over each agent's neighbourhood, or, for 0 rounds, a plain
    `AgentNetwork` (the same computation and initialisation, under the parameter names
    decentralised runs have always saved). Both are called as `network(obs, alive, positions)`."""
    if n_rounds == 0:
        return AgentNetwork(spec, n_outputs, hidden_size, encoder)
    return GraphNetwork(
        spec, n_outputs, hidden_size, encoder, n_heads, n_rounds, n_neighbours, neighbourhood
    )
