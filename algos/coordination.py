"""Message passing over a coordination graph of agents, for any team size.

Each agent is a node; its neighbours are the alive agents of its team, itself included when it is
alive. A round of message passing is multi-head scaled dot-product attention (Vaswani et al. 2017)
of each agent over its neighbours, added back to the agent's features and layer-normalised (the
attention half of a post-norm Transformer layer; the feed-forward half is left out: its two more
hidden × hidden layers per agent doubled the cost of a round on our CPUs, and the encoder before
it and the head after it already give each agent its own non-linear transform).
The parameters act on one agent or one pair of agents at a time, so the same weights run for 2 or
32 agents; this is the graph-attention communication of DGN (Jiang et al. 2020, "Graph
Convolutional Reinforcement Learning"), whose relation kernel is the same attention block, and of
G2ANet / MAGIC, restricted to a complete graph over alive agents.

Why every alive teammate and not the k nearest: the observations of our envs are egocentric (a
local window in pursuit, relative entity rows in knights_archers_zombies) and the batches carry no
absolute positions, so a distance graph has no clean source. Attention learns which teammates
matter instead.

Dead and padded agents neither send nor receive anything that reaches an alive agent: they are
masked out of every agent's keys (their features still flow through the layer so that the output
keeps its shape, but an alive agent's output does not depend on them). The mask rule is
`algos.functional.masked_attention`'s, shared with QMIX's mixer: an agent attends to the alive
agents only, and in a team with nobody alive (a next observation after the team's end) it
attends to nobody: its attention output is 0, so everything stays finite.
"""

from __future__ import annotations

from torch import Tensor, nn

from algos.data import DataSpec
from algos.functional import masked_attention
from algos.networks import AgentNetwork


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

    def weights(self, features: Tensor, alive: Tensor) -> Tensor:
        """Attention weights (B, heads, N, N); each row sums to one over the alive agents (all 0
        in a team with nobody alive)."""
        return self._attend(features, alive)[1]

    def _attend(self, features: Tensor, alive: Tensor) -> tuple[Tensor, Tensor]:
        batch, n_agents, hidden = features.shape
        heads = self.qkv(features).reshape(batch, n_agents, 3, self.n_heads, self.head_size)
        query, key, value = heads.permute(2, 0, 3, 1, 4)  # each (B, heads, N, head_size)
        attended, weights = masked_attention(query, key, value, alive)  # (B, heads, N, head_size)
        messages = attended.transpose(1, 2).reshape(batch, n_agents, hidden)  # (B, N, H)
        return self.out(messages), weights

    def forward(self, features: Tensor, alive: Tensor) -> Tensor:
        """(B, N, H) features and (B, N) bool alive -> (B, N, H) features after one round."""
        messages, _ = self._attend(features, alive)
        return self.norm(features + messages)


class CoordinationGraph(nn.Module):
    """`n_rounds` rounds of `GraphAttention` (separate weights per round); 0 rounds is the identity.

    With two rounds an agent's features depend on its teammates' teammates, i.e. on the whole team
    even when the graph is later made sparse.

    Args:
        hidden_size: feature width.
        n_heads: attention heads per round.
        n_rounds: rounds of message passing.
    """

    def __init__(self, hidden_size: int, n_heads: int, n_rounds: int) -> None:
        super().__init__()
        self.rounds = nn.ModuleList(GraphAttention(hidden_size, n_heads) for _ in range(n_rounds))

    def forward(self, features: Tensor, alive: Tensor) -> Tensor:
        """(B, N, H) and (B, N) bool -> (B, N, H)."""
        for round_ in self.rounds:
            features = round_(features, alive)
        return features


class GraphNetwork(nn.Module):
    """Shared per-agent encoder, message passing over alive teammates, and a linear head.

    (B, N, *obs_shape) observations and (B, N) alive -> (B, N, n_outputs). With `n_rounds` = 0 it
    is exactly an `AgentNetwork` (independent agents), which is what the no-graph ablation uses.

    Args:
        spec: the data spec (observation shape, normalisation).
        n_outputs: outputs per agent.
        hidden_size: width of the encoder and of the messages.
        encoder: encoder kind (see `algos.networks.ENCODER_KINDS`).
        n_heads: attention heads per round.
        n_rounds: rounds of message passing.
    """

    def __init__(
        self,
        spec: DataSpec,
        n_outputs: int,
        hidden_size: int,
        encoder: str,
        n_heads: int,
        n_rounds: int,
    ) -> None:
        super().__init__()
        self.agents = AgentNetwork(spec, n_outputs, hidden_size, encoder)
        self.graph = CoordinationGraph(hidden_size, n_heads, n_rounds)

    def features(self, obs: Tensor, alive: Tensor) -> Tensor:
        """(B, N, H) per-agent features after message passing."""
        return self.graph(self.agents.features(obs), alive)

    def forward(self, obs: Tensor, alive: Tensor) -> Tensor:
        return self.agents.head(self.features(obs, alive))  # (B, N, n_outputs)


def team_network(
    spec: DataSpec, n_outputs: int, hidden_size: int, encoder: str, n_heads: int, n_rounds: int
) -> AgentNetwork | GraphNetwork:
    """The per-agent network of an algorithm that may communicate: a `GraphNetwork` with
    `n_rounds` of message passing, or, for 0 rounds, a plain `AgentNetwork` (the same
    computation and initialisation, under the parameter names decentralised runs have always
    saved). Both are called as `network(obs, alive)`."""
    if n_rounds == 0:
        return AgentNetwork(spec, n_outputs, hidden_size, encoder)
    return GraphNetwork(spec, n_outputs, hidden_size, encoder, n_heads, n_rounds)
