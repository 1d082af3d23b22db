"""The one base class of every algorithm, and the base of their configs.

An algorithm subclasses `Algorithm` and provides:

- `name`, `description` and `Config` (a frozen dataclass subclassing `AlgoConfig` whose fields are
  declared with `param(default, doc)`: every field has a one-line doc and a documented source);
- `metric_keys`: the keys `update` returns (`loss/...` for losses);
- `build()`: create its networks with `self.add_network(name, module)` (every learnable tensor lives
  in a registered module, target networks included) and its optimisers in `self.optimizers`;
- `loss(batch) -> (total, metrics)`, or `terms(batch) -> (terms, metrics)` whose sum the default
  `loss` takes: the differentiable loss of one update (the sum of every term,
  each optimiser's term depending only on its own parameters — detach the rest) and the metrics as
  0-d tensors;
- `action_scores(obs, alive, positions) -> (B, N, A)`: the logits or Q-values `act` maximises or
  samples from (`alive` and `positions` for methods whose agents exchange messages: who may talk
  to whom; the others ignore both);
- optionally `after_step()` (target networks, schedules) and `sampling_subset(data)` (which
  transitions `fit` may draw, e.g. filtered BC's best episodes; `fit` calls it through `attach`,
  which first measures the reward scale of configs with `reward_scale`, `self.reward_scale`);
- `information(config)`: what its agents use when they act, one of `INFORMATION_CLASSES`:
  `decentralised` (each agent its own observation; the default) or `communicating` (messages
  from teammates as well). Tables compare algorithms within a class.

`update(batch)` is defined here once: zero the gradients, `loss`, backward, step every optimiser,
count, `after_step`, and turn the metrics into floats with one device sync. The bare loop of
`marl-bench perf algos` runs the same `loss` + backward + step without the rest, which is how the
overhead of this bookkeeping is measured.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from algos.coordination import NEIGHBOURHOODS, check_positions
from algos.data import Batch, DataSpec, OfflineData
from algos.functional import masked_argmax, masked_softmax
from algos.networks import ENCODER_KINDS
from datagen.errors import UserError

#: What an algorithm's agents use when they act: their own observation only, or messages from
#: teammates as well.
INFORMATION_CLASSES = ("decentralised", "communicating")


def param(default: Any, doc: str) -> Any:
    """A config field with its one-line documentation (shown by `marl-bench algos`)."""
    return field(default=default, metadata={"doc": doc})


def check_positive(config: AlgoConfig, *names: str) -> None:
    """Raise a `UserError` naming the first of `names` whose value is not positive."""
    for name in names:
        if getattr(config, name) <= 0:
            raise UserError(f"{name} must be positive, got {getattr(config, name)}")


def check_discount_and_rate(gamma: float, tau: float) -> None:
    """Raise a `UserError` unless 0 <= gamma <= 1 and 0 < tau <= 1."""
    if not 0.0 <= gamma <= 1.0:
        raise UserError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 < tau <= 1.0:
        raise UserError(f"tau must be in (0, 1], got {tau}")


@dataclass(frozen=True)
class AlgoConfig:
    """Fields every algorithm shares: the size and kind of its per-agent networks."""

    hidden_size: int = param(
        256, "width of every hidden layer (d3rlpy's default vector encoder: 256, 256)"
    )
    encoder: str = param(
        "auto", f"observation encoder, one of {', '.join(ENCODER_KINDS)} (auto: chosen by shape)"
    )

    def __post_init__(self) -> None:
        if self.hidden_size < 1:
            raise UserError(f"hidden_size must be at least 1, got {self.hidden_size}")
        if self.encoder not in ENCODER_KINDS:
            raise UserError(
                f"unknown encoder {self.encoder!r}; valid encoders: {', '.join(ENCODER_KINDS)}"
            )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Each field's one-line documentation."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class RewardScaledConfig(AlgoConfig):
    """The reward scale of an algorithm whose loss weights act on values (CQL weights, advantage
    temperatures, KL penalties): learnt from scaled rewards, such a weight means the same in
    every env."""

    reward_scale: float = param(
        0.0,
        "multiplier of every reward; 0: from the training data, 1 / the standard deviation of "
        "the per-agent rewards of alive agent-steps",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward_scale < 0:
            raise UserError(
                f"reward_scale must be >= 0 (0: from the data), got {self.reward_scale}"
            )


@dataclass(frozen=True)
class CommunicatingConfig(AlgoConfig):
    """Fields of an algorithm that can pass messages between agents when they act (the
    coordination graph of `algos.coordination`); 0 rounds: decentralised."""

    graph_rounds: int = param(
        0, "rounds of attention over each agent's neighbours, 0 = decentralised (DGN uses 2)"
    )
    n_heads: int = param(4, "attention heads per round (DGN: 8 over 128 units; ours 4 over 256)")
    graph_neighbours: int = param(
        4,
        "k: an agent hears at most its k nearest alive teammates by position, itself included "
        "(messages cost O(N k) per round); 0: the whole team, every alive teammate",
    )
    graph_neighbourhood: str = param(
        "nearest",
        f"whom of its k nearest an agent hears, one of {', '.join(NEIGHBOURHOODS)} (in-view: "
        "only those within the env's view radius)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.graph_rounds < 0:
            raise UserError(f"graph_rounds must be >= 0, got {self.graph_rounds}")
        if self.n_heads < 1 or self.hidden_size % self.n_heads:
            raise UserError(
                f"n_heads must divide hidden_size {self.hidden_size}, got {self.n_heads}"
            )
        if self.graph_neighbours < 0:
            raise UserError(
                f"graph_neighbours must be >= 0 (0: the whole team), got {self.graph_neighbours}"
            )
        if self.graph_neighbourhood not in NEIGHBOURHOODS:
            raise UserError(
                f"unknown graph_neighbourhood {self.graph_neighbourhood!r}; valid "
                f"neighbourhoods: {', '.join(NEIGHBOURHOODS)}"
            )


class Algorithm:
    """Base of every offline algorithm (see the module docstring for what a subclass provides).

    Args:
        spec: the data's observation shape, action count, state shape and normalisation.
        config: the algorithm's `Config`.
        seed: seeds the network initialisation (without touching torch's global generator) and
            `self.generator`, from which any randomness of updates must be drawn.
        device: where networks live.
        name: the registry name it is built under (`algos.registry`: an entry such as an ablation
            may run this class with other defaults under its own name); default: the class's.
    """

    #: The class's registry name; an instance's `name` is the entry it was built under.
    name: str = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    metric_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        spec: DataSpec,
        config: AlgoConfig,
        seed: int = 0,
        device: str = "cpu",
        name: str | None = None,
    ) -> None:
        self.name = name or type(self).name
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} needs a {self.Config.__name__}, got {type(config)}")
        self.spec = spec
        self.config = config
        self.seed = seed
        self.device = torch.device(device)
        self.n_updates = 0
        #: What rewards are multiplied by in the losses (`RewardScaledConfig`; set by `attach`).
        self.reward_scale = getattr(config, "reward_scale", 0.0) or 1.0
        self.generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.networks = nn.ModuleDict()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.build()

    # ------------------------------------------------------------------ provided by subclasses
    @classmethod
    def information(cls, config: AlgoConfig) -> str:
        """The information class of this algorithm with `config` (`INFORMATION_CLASSES`):
        communicating when its config has rounds of message passing (`CommunicatingConfig`),
        else decentralised."""
        return "communicating" if getattr(config, "graph_rounds", 0) > 0 else "decentralised"

    def build(self) -> None:
        """Create networks (`add_network`) and optimisers (`self.optimizers`)."""
        raise NotImplementedError

    def terms(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The loss as named terms (each depending only on its own optimiser's parameters) and the
        metrics; an algorithm provides this or `loss`."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """The total loss of one update and its metrics (0-d tensors, detached). Default: the sum
        of `terms`, with `loss/total` added to the metrics."""
        terms, metrics = self.terms(batch)
        total = sum(terms.values())
        return total, {**metrics, "loss/total": total.detach()}

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        """(B, N, *obs_shape), (B, N) alive, (B, N, 2) positions or None -> (B, N, A) logits or
        Q-values that `act` uses."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after every optimiser step (target networks, schedules). Default: nothing."""

    def sampling_subset(self, data: OfflineData) -> Tensor | None:
        """Transition indices `fit` may sample from, or None for all. Default: all."""
        return None

    # ------------------------------------------------------------------------------ provided
    def attach(self, data: OfflineData) -> Tensor | None:
        """What `fit` calls once before training: check that `data` records the positions the
        coordination graph needs (`check_positions`), measure the reward scale from `data` when
        the config asks for it (`reward_scale` 0), then return `sampling_subset(data)`.

        Raises:
            UserError: message passing over a neighbourhood that needs positions `data` lacks.
        """
        config = self.config
        if isinstance(config, CommunicatingConfig) and config.graph_rounds > 0:
            check_positions(data, config.graph_neighbours, config.graph_neighbourhood)
        if getattr(self.config, "reward_scale", None) == 0:
            self.reward_scale = data.reward_scale()
        return self.sampling_subset(data)

    def add_network(self, name: str, module: nn.Module) -> nn.Module:
        """Register `module` (moved to the device) so that it is saved and loaded."""
        self.networks[name] = module.to(self.device)
        return self.networks[name]

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on `batch`; returns the metrics (`metric_keys`) as floats."""
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        total, metrics = self.loss(batch)
        total.backward()
        for optimizer in self.optimizers.values():
            optimizer.step()
        self.n_updates += 1
        self.after_step()
        values = torch.stack([value.detach().float() for value in metrics.values()]).tolist()
        return dict(zip(metrics, values, strict=True))

    @torch.no_grad()
    def act(
        self,
        obs: Tensor | np.ndarray,
        alive: Tensor | np.ndarray,
        action_mask: Tensor | np.ndarray | None = None,
        greedy: bool = True,
        generator: torch.Generator | list[torch.Generator] | None = None,
        positions: Tensor | np.ndarray | None = None,
    ) -> Tensor:
        """Actions for a team of any size.

        Args:
            obs: (N, *obs_shape) one team, or (B, N, *obs_shape) a batch of teams.
            alive: (N,) or (B, N) bool; dead agents get an action too (the env ignores it).
            action_mask: (N, A) or (B, N, A) bool legal actions; None: all legal.
            greedy: the best-scoring legal action; else sample from the softmax of the scores
                over legal actions (Boltzmann for Q-values).
            generator: the torch generator sampling draws from (on the algorithm's device), or
                one per team of the batch: team b then draws exactly what it would alone.
            positions: (N, 2) or (B, N, 2) every agent's position in the env now, which decides
                who hears whom in a communicating algorithm (decentralised ones ignore it);
                None: unknown (a communicating algorithm then needs k >= N).

        Returns:
            (N,) or (B, N) int64 actions, never an illegal one, on the algorithm's device.

        Raises:
            UserError: a communicating algorithm whose neighbourhood needs positions, given none.
        """
        obs = torch.as_tensor(obs, device=self.device)
        alive = torch.as_tensor(alive, device=self.device)
        if positions is not None:
            positions = torch.as_tensor(positions, device=self.device, dtype=torch.float32)
        single = alive.dim() == 1
        if single:
            obs, alive = obs.unsqueeze(0), alive.unsqueeze(0)
            positions = None if positions is None else positions.unsqueeze(0)
        scores = self.action_scores(obs, alive.to(torch.bool), positions)  # (B, N, A)
        if action_mask is None:
            mask = torch.ones_like(scores, dtype=torch.bool)
        else:
            mask = torch.as_tensor(action_mask, device=self.device, dtype=torch.bool)
            mask = mask.reshape(scores.shape)
        if greedy:
            actions = masked_argmax(scores, mask)
        elif isinstance(generator, list):  # one generator per team: (N, A) draws from each
            probs = masked_softmax(scores, mask)  # (B, N, A)
            draws = [
                torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generator, strict=True)
            ]
            actions = torch.stack(draws)[..., 0]
        else:
            probs = masked_softmax(scores, mask).reshape(-1, scores.shape[-1])  # (B * N, A)
            sampled = torch.multinomial(probs, 1, generator=generator)
            actions = sampled.reshape(scores.shape[:-1])
        return actions[0] if single else actions

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks, optimisers, counters and the generator."""
        return {
            "networks": self.networks.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "n_updates": self.n_updates,
            "reward_scale": self.reward_scale,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (copied: nothing is shared with `state`)."""
        self.networks.load_state_dict(state["networks"])
        for name, optimizer in self.optimizers.items():
            # Optimizer.load_state_dict keeps the given moment tensors as they are: without a copy,
            # two algorithms loaded from one in-memory state would update the same tensors.
            optimizer.load_state_dict(copy.deepcopy(state["optimizers"][name]))
        self.n_updates = int(state["n_updates"])
        self.reward_scale = float(state.get("reward_scale", self.reward_scale))
        self.generator.set_state(state["generator"])
