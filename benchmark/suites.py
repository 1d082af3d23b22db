"""Benchmark suites as data: TOML files in `data/suites/` expanded into jobs and cells.

A suite holds one or more `[[experiment]]` tables. Every experiment names one env and crosses its
training team sizes, data, algorithms and seeds into *jobs*; a job trains once and is evaluated
online at each of the experiment's evaluation team sizes, and each (job, evaluation size) pair is a
*cell*, the unit the result store records. Keys of an experiment (defaults in brackets):

    kind             "transfer" (train small, evaluate at every size), "finetune" (pretrain small,
                     then a small dataset at a large size, against that small dataset alone), or
                     "degenerate" (data quality and mixtures at a fixed size) ["transfer"]
    env              an env of `marl-datagen envs`
    env_options      env options, as `marl-datagen collect --option` takes them [{}]
    train_agents     training team sizes; an entry that is a list trains one model on several
                     team sizes at once, e.g. [2, 4, [2, 4]]
    eval_agents      evaluation team sizes
    data             data specs: a quality ("expert", "medium", "random", "degenerate"), a
                     degenerate mode ("degenerate-saboteur", "degenerate-collapsed") or a mixture
                     "expert+degenerate@25" (25 % of the episodes from the second source)
    algos            registered algorithms (`marl-bench algos`)
    seeds            training seeds [[0, 1, 2]]
    n_dataset_episodes
                     episodes per collected dataset [20]
    dataset_seed     seed of every collection [0]; the fine-tuning datasets' is one more
    dataset_per_seed each training seed s its own datasets, collected (and mixed) with seed
                     dataset_seed + s (fine-tuning: dataset_seed + s + 100,000); the evaluation seed
                     must then differ from every data seed [false]
    n_updates        gradient updates per training run [2000]
    batch_size       transitions per batch [256]
    n_eval_episodes  evaluation episodes per cell [10]
    eval_seed        seed of the first evaluation episode; the same for every algorithm [1000]
    n_finetune_episodes, n_finetune_updates
                     (finetune only) the small dataset at each evaluation size, and the updates
                     spent on it [5, 500]
    config           config overrides per algorithm, e.g. {bc = {hidden_size = 64}}; a key
                     "all" applies to every algorithm that has the field [{}]
    tuned            start every algorithm from its settings chosen by `marl-bench tune`
                     (data/tuning/tuned.json; an algorithm not tuned yet keeps its defaults,
                     an ablation takes its method's), then apply `config`; the runs' names
                     end in `-tuned` [false]

Suite files written before counts were named `n_...` say `dataset_episodes`, `updates`,
`eval_episodes`, `finetune_episodes` and `finetune_updates`; they read as the new names
(`table_before_n_counts`).

A suite may also `include = ["other-suite", ...]`, whose experiments it adds to its own (`full`).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagen.envs import check_request
from datagen.errors import UserError
from datagen.paths import project_data_dir, read_json
from datagen.policies.registry import DEGENERATE_MODES, QUALITIES

if TYPE_CHECKING:
    from algos.train import TrainSettings

KINDS = ("transfer", "finetune", "degenerate")
SUITE_DIR = "suites"
#: Each algorithm's settings chosen by `marl-bench tune` (benchmark/tune.py), under data/.
TUNED_FILE = Path("tuning") / "tuned.json"
#: With a dataset per seed, how far above a seed's training-data seed its fine-tuning data's is.
FINETUNE_SEED_OFFSET = 100_000


def tuned_settings(algo: str) -> dict[str, Any] | None:
    """The committed settings of `algo` (`data/tuning/tuned.json`), or None when not tuned.

    An ablation without a study of its own takes the settings of the method it ablates, less the
    fields the ablation sets itself: it then differs from the method by the removed part alone,
    not by the luck of a second search.
    """
    from algos.registry import get_entry

    tuned = read_json(project_data_dir() / TUNED_FILE)
    if algo in tuned:
        return dict(tuned[algo]["params"])
    entry = get_entry(algo)
    if entry.ablates is None or entry.ablates not in tuned:
        return None
    params = tuned[entry.ablates]["params"]
    return {key: value for key, value in params.items() if key not in entry.overrides}


_MIXTURE = re.compile(r"^(?P<base>[a-z-]+)\+(?P<other>[a-z-]+)@(?P<percent>\d{1,2})$")


@dataclass(frozen=True)
class DataSpec:
    """What a model trains on: one quality, or a mixture of two.

    Attributes:
        label: the spec as written in the suite (the table's name for it).
        base: quality tag of the (main) source, e.g. "expert" or "degenerate-saboteur".
        other: quality tag of the second source of a mixture, else None.
        percent: share of the second source's episodes, 0-99.
    """

    label: str
    base: str
    other: str | None = None
    percent: int = 0

    @classmethod
    def parse(cls, text: str) -> DataSpec:
        """Parse "expert", "degenerate-saboteur" or "expert+degenerate@25".

        Raises:
            UserError: an unknown quality or mode, or a malformed mixture.
        """
        match = _MIXTURE.match(text)
        if match:
            spec = cls(text, match["base"], match["other"], int(match["percent"]))
        elif "+" in text or "@" in text:
            raise UserError(
                f"bad data spec {text!r}; a mixture reads <quality>+<quality>@<percent>, "
                "e.g. expert+degenerate@25"
            )
        else:
            spec = cls(text, text)
        for tag in spec.tags:
            _check_quality_tag(tag)
        return spec

    @property
    def tags(self) -> tuple[str, ...]:
        """The quality tags of the datasets this spec needs."""
        return (self.base,) if self.other is None else (self.base, self.other)

    @property
    def dataset_quality(self) -> str:
        """The quality part of this data's dataset id (a mixture gets its own, digits included)."""
        if self.other is None:
            return self.base
        return f"{self.base}-{self.other}{self.percent}"


def _check_quality_tag(tag: str) -> None:
    name, _, mode = tag.partition("-")
    if name not in QUALITIES or (mode and (name != "degenerate" or mode not in DEGENERATE_MODES)):
        valid = list(QUALITIES) + [f"degenerate-{m}" for m in DEGENERATE_MODES]
        raise UserError(f"unknown data quality {tag!r}; valid qualities: {', '.join(valid)}")


@dataclass(frozen=True)
class Experiment:
    """One `[[experiment]]` table of a suite, validated (see the module docstring for each key)."""

    env: str
    train_agents: tuple[tuple[int, ...], ...]
    eval_agents: tuple[int, ...]
    data: tuple[DataSpec, ...]
    algos: tuple[str, ...]
    kind: str = "transfer"
    env_options: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_dataset_episodes: int = 20
    dataset_seed: int = 0
    dataset_per_seed: bool = False
    n_updates: int = 2000
    batch_size: int = 256
    n_eval_episodes: int = 10
    eval_seed: int = 1000
    n_finetune_episodes: int = 5
    n_finetune_updates: int = 500
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuned: bool = False

    def data_seed(self, seed: int, small: bool = False) -> int:
        """The collection seed of the datasets training seed `seed` uses (`small`: the
        fine-tuning ones). With a dataset per seed the fine-tuning seeds start
        `FINETUNE_SEED_OFFSET` above the training ones, so that no seed's fine-tuning data
        repeats another seed's training data."""
        if not self.dataset_per_seed:
            return self.dataset_seed + int(small)
        return self.dataset_seed + seed + (FINETUNE_SEED_OFFSET if small else 0)

    def data_seeds(self) -> list[int]:
        """Every collection seed of the experiment's datasets, sorted."""
        smalls = (False, True) if self.kind == "finetune" else (False,)
        return sorted({self.data_seed(seed, small) for seed in self.seeds for small in smalls})


@dataclass(frozen=True)
class Job:
    """One training run of a suite and the team sizes it is evaluated at.

    Attributes:
        experiment: the experiment the job belongs to.
        train_agents: the team sizes of its (pre)training data.
        data: what it (pre)trains on.
        algo: the algorithm.
        seed: the training seed.
        regime: "offline" (transfer and degenerate), or for finetune "pretrained+finetuned"
            (the offline run on `train_agents`, then the small dataset at `target`) or
            "small-only" (the small dataset at `target` alone).
        target: (finetune only) the team size of the small dataset, the job's one evaluation size.
    """

    experiment: Experiment
    train_agents: tuple[int, ...]
    data: DataSpec
    algo: str
    seed: int
    regime: str = "offline"
    target: int | None = None

    @property
    def eval_agents(self) -> tuple[int, ...]:
        return self.experiment.eval_agents if self.target is None else (self.target,)

    @property
    def small(self) -> bool:
        """Whether the job trains on the fine-tuning datasets (the small data at `target`)."""
        return self.regime != "offline"

    @property
    def settings(self) -> TrainSettings:
        """How the job trains: the experiment's budget (the fine-tuning one for a job on the
        small data) at the job's seed."""
        from algos.train import TrainSettings

        exp = self.experiment
        n_updates = exp.n_finetune_updates if self.small else exp.n_updates
        return TrainSettings(n_updates, exp.batch_size, self.seed)

    @property
    def name(self) -> str:
        """A file-system-safe name, unique within a suite (the job's run directory)."""
        train = "+".join(str(n) for n in self.train_agents)
        data = self.data.label.replace("+", "_plus_").replace("@", "_at_")
        parts = [self.experiment.kind, self.experiment.env, f"n{train}", data, self.algo]
        if self.experiment.tuned:
            parts.append("tuned")
        if self.regime != "offline":
            parts.append(f"{self.regime.replace('+', '_')}-to{self.target}")
        return "-".join(parts) + f"-s{self.seed}"

    def pretraining(self) -> Job:
        """The offline job whose run a pretrained+finetuned job starts from."""
        return Job(
            replace(self.experiment, kind="transfer"),
            self.train_agents,
            self.data,
            self.algo,
            self.seed,
        )

    def cell_key(self, eval_agents: int) -> str:
        """The result store's key of this job evaluated at `eval_agents`."""
        return f"{self.name}@n{eval_agents}"

    def cell_keys(self) -> list[str]:
        return [self.cell_key(n) for n in self.eval_agents]


@dataclass(frozen=True)
class Suite:
    """A named list of experiments."""

    name: str
    description: str
    experiments: tuple[Experiment, ...]

    def jobs(self) -> list[Job]:
        """Every job of the suite, in a stable order (experiments, then training sizes, data,
        algorithms, seeds)."""
        jobs = []
        for exp in self.experiments:
            if exp.kind == "finetune":
                variants = [
                    (regime, target)
                    for target in exp.eval_agents
                    for regime in ("pretrained+finetuned", "small-only")
                ]
            else:
                variants = [("offline", None)]
            for train in exp.train_agents:
                for data in exp.data:
                    for algo in exp.algos:
                        for seed in exp.seeds:
                            for regime, target in variants:
                                jobs.append(Job(exp, train, data, algo, seed, regime, target))
        names = [job.name for job in jobs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise UserError(f"suite {self.name!r} repeats jobs: {', '.join(duplicates[:3])}")
        return jobs

    def n_cells(self) -> int:
        return sum(len(job.eval_agents) for job in self.jobs())


FILTER_KEYS = ("kind", "env", "train_agents", "data", "algo", "seed", "regime", "tuned")


def parse_filters(pairs: Iterable[str]) -> dict[str, set[str]]:
    """`--only KEY=VALUE` pairs -> {key: accepted values} (values of one key are alternatives).

    Raises:
        UserError: a pair without `=`, or an unknown key.
    """
    filters: dict[str, set[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise UserError(
                f"bad filter {pair!r}; expected KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}"
            )
        filters.setdefault(key, set()).add(value)
    return filters


def job_matches(job: Job, filters: dict[str, set[str]]) -> bool:
    """Whether `job` passes every filter (train_agents reads "2" or "2+4", tuned "true" or
    "false")."""
    values = {
        "kind": job.experiment.kind,
        "env": job.experiment.env,
        "train_agents": "+".join(str(n) for n in job.train_agents),
        "data": job.data.label,
        "algo": job.algo,
        "seed": str(job.seed),
        "regime": job.regime,
        "tuned": str(job.experiment.tuned).lower(),
    }
    return all(values[key] in accepted for key, accepted in filters.items())


def suite_names(directory: Path | None = None) -> list[str]:
    """The suites shipped in `data/suites/`."""
    base = directory or project_data_dir() / SUITE_DIR
    return sorted(path.stem for path in base.glob("*.toml"))


def load_suite(name_or_path: str | Path, known_algos: Iterable[str] | None = None) -> Suite:
    """Load a suite by name (`data/suites/<name>.toml`) or from a TOML file.

    Args:
        name_or_path: a shipped suite's name or a path to a TOML file.
        known_algos: the registered algorithm names, to check `algos` against (None: unchecked).

    Raises:
        UserError: an unknown suite, a malformed file, or an invalid experiment.
    """
    path = _suite_path(name_or_path)
    return _load(path, known_algos, seen=())


def _suite_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise UserError(f"suite file {str(candidate)!r} does not exist")
        return candidate
    names = suite_names()
    path = project_data_dir() / SUITE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        close = difflib.get_close_matches(str(name_or_path), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"unknown suite {str(name_or_path)!r}{hint}; valid suites: {', '.join(names)} "
            "or a path to a .toml file"
        )
    return path


def _load(path: Path, known_algos: Iterable[str] | None, seen: tuple[str, ...]) -> Suite:
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"suite file {path} is not valid TOML: {err}") from err
    unknown = sorted(set(raw) - {"description", "include", "experiment"})
    if unknown:
        raise UserError(
            f"{path.name}: unknown key {unknown[0]!r}; valid keys: description, include, experiment"
        )
    experiments: list[Experiment] = []
    for included in raw.get("include", []):
        if included in seen or included == path.stem:
            raise UserError(f"{path.name}: suite {included!r} includes itself")
        experiments.extend(
            _load(_suite_path(included), known_algos, (*seen, path.stem)).experiments
        )
    for index, table in enumerate(raw.get("experiment", [])):
        experiments.append(_experiment(table, f"{path.name} experiment {index + 1}", known_algos))
    if not experiments:
        raise UserError(f"{path.name}: a suite needs at least one [[experiment]]")
    return Suite(path.stem, raw.get("description", ""), tuple(experiments))


#: Keys of suite files written before counts were named `n_...`, and their names now.
FORMER_KEYS = {
    "dataset_episodes": "n_dataset_episodes",
    "updates": "n_updates",
    "eval_episodes": "n_eval_episodes",
    "finetune_episodes": "n_finetune_episodes",
    "finetune_updates": "n_finetune_updates",
}


def table_before_n_counts(table: dict[str, Any], where: str) -> dict[str, Any]:
    """An experiment table written before counts were named `n_...`, with its keys' names of
    now; newer tables are returned unchanged (as a copy).

    Raises:
        UserError: a table with both a former name and its new one.
    """
    both = [key for key in FORMER_KEYS if key in table and FORMER_KEYS[key] in table]
    if both:
        raise UserError(f"{where}: {both[0]!r} is the former name of {FORMER_KEYS[both[0]]!r}")
    return {FORMER_KEYS.get(key, key): value for key, value in table.items()}


#: Keys of an experiment that count something, each at least 1.
COUNTS = (
    "n_dataset_episodes",
    "n_updates",
    "batch_size",
    "n_eval_episodes",
    "n_finetune_episodes",
    "n_finetune_updates",
)


def _experiment(table: dict[str, Any], where: str, known_algos: Iterable[str] | None) -> Experiment:
    valid = [f.name for f in fields(Experiment)]
    table = table_before_n_counts(table, where)
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(valid)}")
    missing = [
        key for key in ("env", "train_agents", "eval_agents", "data", "algos") if key not in table
    ]
    if missing:
        raise UserError(f"{where}: missing key {missing[0]!r}")
    values = dict(table)
    values["train_agents"] = tuple(
        tuple(entry) if isinstance(entry, list) else (entry,) for entry in table["train_agents"]
    )
    values["data"] = tuple(DataSpec.parse(text) for text in table["data"])
    for key in ("eval_agents", "algos", "seeds"):
        if key in values:
            values[key] = tuple(values[key])
    exp = Experiment(**values)
    if exp.kind not in KINDS:
        raise UserError(f"{where}: unknown kind {exp.kind!r}; valid kinds: {', '.join(KINDS)}")
    sizes = {n for group in exp.train_agents for n in group} | set(exp.eval_agents)
    for n in sorted(sizes):
        try:
            check_request(exp.env, n, exp.env_options)
        except UserError as err:
            raise UserError(f"{where}: {err}") from err
    unknown_algos = sorted(set(exp.config) - set(exp.algos) - {"all"})
    if unknown_algos:
        raise UserError(f"{where}: config for {unknown_algos[0]!r}, which is not in algos")
    if known_algos is not None:
        known = list(known_algos)
        for algo in exp.algos:
            if algo not in known:
                raise UserError(
                    f"{where}: unknown algorithm {algo!r}; valid algorithms: {', '.join(known)}"
                )
    for key in COUNTS:
        if getattr(exp, key) < 1:
            raise UserError(f"{where}: {key} must be at least 1")
    if not (exp.seeds and exp.algos and exp.data and exp.eval_agents and exp.train_agents):
        raise UserError(
            f"{where}: seeds, algos, data, train_agents and eval_agents must be non-empty"
        )
    # A dataset collected with seed s holds the episodes seeded (s, 0), (s, 1), ...; evaluation
    # plays (eval_seed, 0), ... Checked under the per-seed protocol only, so that the suites run
    # before it load as they ran (tuning.toml evaluates from its data seed, 5000).
    seeds = exp.data_seeds()
    if exp.dataset_per_seed and exp.eval_seed in seeds:
        raise UserError(
            f"{where}: eval_seed {exp.eval_seed} is also a data seed (the datasets use seeds "
            f"{', '.join(map(str, seeds))}); evaluation must start from episodes no dataset holds"
        )
    return exp
