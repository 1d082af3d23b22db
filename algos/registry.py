"""Every algorithm by name: its config class, its class and a one-line description.

To add an algorithm, import its class below and add it to `_CLASSES` (the class carries `name`,
`description` and `Config`); `marl-bench algos`, `marl-bench train` and the contract tests pick it
up from here.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from algos.base import AlgoConfig, Algorithm
from algos.bc import BC
from algos.bear import BEAR
from algos.brac import BRAC
from algos.data import DataSpec
from algos.gawi import GAWI, GAWINoAdv, GAWINoGraph, GAWINoQuality
from algos.iql import IQL
from algos.qmix import QMIX
from algos.sac import SAC
from datagen.errors import UserError

_CLASSES: tuple[type[Algorithm], ...] = (
    BC,
    IQL,
    QMIX,
    SAC,
    BRAC,
    BEAR,
    GAWI,
    GAWINoGraph,
    GAWINoAdv,
    GAWINoQuality,
)


@dataclass(frozen=True)
class AlgoEntry:
    """One registered algorithm.

    Attributes:
        name: the name used on the command line and in run directories.
        config_class: its frozen config dataclass.
        algorithm_class: its `Algorithm` subclass.
        description: one line.
    """

    name: str
    config_class: type[AlgoConfig]
    algorithm_class: type[Algorithm]
    description: str

    def defaults(self) -> dict[str, Any]:
        return self.config_class().as_dict()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: name, description, metric keys, fields with default and doc."""
        docs = self.config_class.docs()
        return {
            "name": self.name,
            "description": self.description,
            "metric_keys": list(self.algorithm_class.metric_keys),
            "config": {
                key: {"default": value, "doc": docs[key]} for key, value in self.defaults().items()
            },
        }


ALGORITHMS: dict[str, AlgoEntry] = {
    cls.name: AlgoEntry(cls.name, cls.Config, cls, cls.description) for cls in _CLASSES
}


def algorithm_names() -> list[str]:
    return list(ALGORITHMS)


def get_entry(name: str) -> AlgoEntry:
    """The entry of algorithm `name`.

    Raises:
        UserError: for an unknown name, naming the valid ones.
    """
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
    """Algorithm `name`'s config with `overrides` applied (strings are converted to field types).

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
    return entry.config_class(**values)


def build_algorithm(
    name: str,
    spec: DataSpec,
    config: AlgoConfig | dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> Algorithm:
    """A fresh algorithm `name` for data `spec` (config as an object, a dict of overrides, or
    None for the defaults)."""
    entry = get_entry(name)
    if not isinstance(config, AlgoConfig):
        config = make_config(name, config)
    return entry.algorithm_class(spec, config, seed=seed, device=device)
