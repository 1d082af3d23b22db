"""Every algorithm by name: an entry is a name, an algorithm class, overrides of its config's
defaults, and a one-line description.

To add an algorithm, write its class (it carries `name`, `description` and `Config`) and add
`AlgoEntry.of(TheClass)` to `ENTRIES`. To add a variant of an existing algorithm (an ablation, a
filtered BC), add `AlgoEntry("its-name", TheClass, "one line", {"field": value, ...})`: the same
class and config with other defaults; nothing else to write. `marl-bench algos` lists every entry
with its defaults, `make_config` and `build_algorithm` apply a user's overrides on top of the
entry's, and a run saves the entry's name with its full config, so it loads under that name. The
contract tests (`tests/algos/test_contract.py`) run over every entry.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any

from algos.base import AlgoConfig, Algorithm
from algos.bc import BC
from algos.bear import BEAR
from algos.brac import BRAC
from algos.data import DataSpec
from algos.gawi import GAWI
from algos.idqn import IDQN
from algos.implicit_ql import ImplicitQL
from algos.qmix import QMIX
from algos.sac import SAC
from datagen.errors import UserError


@dataclass(frozen=True)
class AlgoEntry:
    """One registered algorithm.

    Attributes:
        name: the name used on the command line and in run directories.
        algorithm_class: its `Algorithm` subclass (whose `Config` is the config class).
        description: one line.
        overrides: config fields whose defaults this entry replaces (empty for the class's own
            entry).
        ablates: for an ablation, the entry it removes a part of; the ablation runs at that
            entry's tuned settings (`benchmark.suites.tuned_settings`) so that it differs from
            it by the removed part alone.
    """

    name: str
    algorithm_class: type[Algorithm]
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    ablates: str | None = None

    def __post_init__(self) -> None:
        keys = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(self.overrides) - keys)
        if unknown:
            raise ValueError(f"entry {self.name!r} overrides unknown config keys {unknown}")

    @classmethod
    def of(cls, algorithm_class: type[Algorithm]) -> AlgoEntry:
        """The entry of a class under its own name and description, with its own defaults."""
        return cls(algorithm_class.name, algorithm_class, algorithm_class.description)

    @property
    def config_class(self) -> type[AlgoConfig]:
        return self.algorithm_class.Config

    def defaults(self) -> dict[str, Any]:
        """Every config field's default for this entry (the class's, then the overrides)."""
        return self.config_class(**self.overrides).as_dict()

    @property
    def information(self) -> str:
        """The information class at this entry's defaults (`algos.base.INFORMATION_CLASSES`)."""
        return self.algorithm_class.information(self.config_class(**self.overrides))

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: name, information class, description, metric keys, fields
        with default and doc."""
        docs = self.config_class.docs()
        return {
            "name": self.name,
            "information": self.information,
            "description": self.description,
            "metric_keys": list(self.algorithm_class.metric_keys),
            "config": {
                key: {"default": value, "doc": docs[key]} for key, value in self.defaults().items()
            },
        }


ENTRIES: tuple[AlgoEntry, ...] = (
    AlgoEntry.of(BC),
    AlgoEntry(
        "bc-filtered",
        BC,
        "filtered BC: clones the best 25 % of each dataset's episodes by team return",
        {"top_fraction": 0.25},
    ),
    AlgoEntry(
        "bc-filtered-agent",
        BC,
        "per-agent filtered BC: clones each agent's steps in the episodes where its own return "
        "is among the best 25 % of the dataset's",
        {"top_fraction": 0.25, "filter_by": "agent"},
    ),
    AlgoEntry.of(IDQN),
    AlgoEntry.of(ImplicitQL),
    # Communicating variants: the same algorithms with gawi's coordination graph (one round of
    # attention over each agent's nearest alive teammates) in every network, compared with gawi
    # within their class.
    AlgoEntry(
        "bc-comm",
        BC,
        "communicating BC: behaviour cloning through gawi's coordination graph",
        {"graph_rounds": 1},
    ),
    AlgoEntry(
        "idqn-comm",
        IDQN,
        "communicating idqn: independent double-DQN + CQL through gawi's coordination graph",
        {"graph_rounds": 1},
    ),
    AlgoEntry(
        "implicit-ql-comm",
        ImplicitQL,
        "communicating Implicit Q-Learning through gawi's coordination graph",
        {"graph_rounds": 1},
    ),
    AlgoEntry.of(QMIX),
    AlgoEntry.of(SAC),
    AlgoEntry.of(BRAC),
    AlgoEntry.of(BEAR),
    AlgoEntry.of(GAWI),
    # gawi's ablations (docs/method.md): each removes one part by its config defaults.
    AlgoEntry(
        "gawi-nograph",
        GAWI,
        "ablation of gawi: no message passing (independent agents)",
        {"graph_rounds": 0},
        ablates="gawi",
    ),
    AlgoEntry(
        "gawi-noadv",
        GAWI,
        "ablation of gawi: no advantage weighting nor trust (graph + plain BC)",
        {"beta": 0.0, "quality_beta": 0.0},
        ablates="gawi",
    ),
    AlgoEntry(
        "gawi-noquality",
        GAWI,
        "ablation of gawi: no per-agent quality inference (trust 1)",
        {"quality_beta": 0.0},
        ablates="gawi",
    ),
)

ALGORITHMS: dict[str, AlgoEntry] = {entry.name: entry for entry in ENTRIES}
if len(ALGORITHMS) != len(ENTRIES):
    raise ValueError("two registry entries share a name")
if any(entry.ablates not in (None, *ALGORITHMS) for entry in ENTRIES):
    raise ValueError("an ablation names an entry that is not registered")


def algorithm_names() -> list[str]:
    return list(ALGORITHMS)


#: Former names that still resolve, with a warning: `iql` meant independent Q-learning (now
#: `idqn`), which is easily mistaken for Implicit Q-Learning (`implicit-ql`).
ALIASES: dict[str, str] = {"iql": "idqn"}


def get_entry(name: str) -> AlgoEntry:
    """The entry of algorithm `name` (a former name in `ALIASES` warns and resolves).

    Raises:
        UserError: for an unknown name, naming the valid ones.
    """
    if name in ALIASES:
        warnings.warn(
            f"algorithm {name!r} is now called {ALIASES[name]!r} (independent double DQN); "
            "Implicit Q-Learning is 'implicit-ql'",
            FutureWarning,
            stacklevel=2,
        )
        name = ALIASES[name]
    if name not in ALGORITHMS:
        raise UserError(f"unknown algorithm {name!r}; valid algorithms: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def _convert(key: str, raw: Any, kind: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        if kind is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise UserError(f"config key {key!r} needs a {kind.__name__}, got {raw!r}") from None
    return raw


def make_config(name: str, overrides: dict[str, Any] | None = None) -> AlgoConfig:
    """Algorithm `name`'s config: the entry's defaults with `overrides` applied on top (strings
    are converted to field types).

    Raises:
        UserError: an unknown algorithm, a key the config does not have (naming the valid keys),
            or a value of the wrong type or out of range.
    """
    entry = get_entry(name)
    overrides = dict(overrides or {})
    keys = [f.name for f in dataclasses.fields(entry.config_class)]
    unknown = sorted(set(overrides) - set(keys))
    if unknown:
        raise UserError(
            f"unknown config key {unknown[0]!r} for {name}; valid keys: {', '.join(keys)}"
        )
    hints = typing.get_type_hints(entry.config_class)
    values = {key: _convert(key, value, hints[key]) for key, value in overrides.items()}
    return entry.config_class(**{**entry.overrides, **values})


def overrides_by_algo(
    names: tuple[str, ...] | list[str], overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Config `overrides` meant for every algorithm of `names` that has the field: each
    algorithm's share, converted to its fields' types.

    Raises:
        UserError: an unknown algorithm, a bad value, or a key no algorithm of `names` has.
    """
    shares = {}
    unused = set(overrides)
    for name in names:
        fields_of_algo = get_entry(name).defaults()
        share = {key: value for key, value in overrides.items() if key in fields_of_algo}
        config = make_config(name, share)  # a bad value fails here
        shares[name] = {key: getattr(config, key) for key in share}
        unused -= set(share)
    if unused:
        key = sorted(unused)[0]
        raise UserError(f"no algorithm of {', '.join(names)} has the config field {key!r}")
    return shares


def build_algorithm(
    name: str,
    spec: DataSpec,
    config: AlgoConfig | dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> Algorithm:
    """A fresh algorithm `name` for data `spec` (config as an object, a dict of overrides of the
    entry's defaults, or None for those defaults); its `name` is the entry's."""
    entry = get_entry(name)
    if not isinstance(config, AlgoConfig):
        config = make_config(entry.name, config)
    return entry.algorithm_class(spec, config, seed=seed, device=device, name=entry.name)


def information_class(name: str, overrides: dict[str, Any] | None = None) -> str:
    """The information class of algorithm `name` with config `overrides` on its defaults."""
    config = make_config(name, overrides)
    return get_entry(name).algorithm_class.information(config)
