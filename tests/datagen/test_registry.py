"""The registry: the shipped one is valid and rebuilds from its recipes; registry files are
validated; recipes read back into the requests that made them; publish writes upload-ready files
and entries; verify compares with the registry."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from datagen import load_dataset
from datagen.cli import main as datagen
from datagen.collect import CollectRequest, collect
from datagen.dataset import DatasetId
from datagen.dataset.ops import combine, convert
from datagen.dataset.registry import default_registry_path, load_registry, parse_registry
from datagen.errors import UserError
from datagen.fetch import fetch
from datagen.publishing import publish
from datagen.recipes import collect_request, rebuild_request, recipe_of

BASE = "https://example.org/datasets"


def _run(command: str) -> None:
    """Run a recipe's `marl-datagen ...` command line through the CLI."""
    argv = shlex.split(command)
    assert argv[0] == "marl-datagen"
    result = CliRunner().invoke(datagen, argv[1:])
    assert result.exit_code == 0, result.output


def _content(path: Path) -> str:
    with load_dataset(path) as dataset:
        return dataset.metadata["content_checksum"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny(quality: str = "random", seed: int = 0, **kwargs) -> Path:
    return collect(CollectRequest("prison", 2, quality, n_episodes=2, seed=seed, **kwargs))


# ------------------------------------------------------------------------- the shipped registry


def test_the_shipped_registry_is_valid() -> None:
    registry = load_registry()
    assert registry.source == str(default_registry_path())
    assert len(registry.entries) >= 4
    for dataset_id, entry in registry.entries.items():
        assert entry.file == f"{dataset_id}.h5" and entry.format == "hdf5"
        assert all(url.startswith("https://") and url.endswith(entry.file) for url in entry.urls)
        assert str(rebuild_request(entry).dataset_id) == dataset_id
        argv = shlex.split(entry.recipe["command"])
        assert argv[:2] == ["marl-datagen", "collect"]
        parsed = DatasetId.parse(dataset_id)
        assert argv[argv.index("--env") + 1] == parsed.env
        assert int(argv[argv.index("--agents") + 1]) == parsed.n_agents
        assert int(argv[argv.index("--episodes") + 1]) == entry.stats["episodes"]
        assert entry.stats["steps"] >= entry.stats["episodes"]


def test_the_cheapest_shipped_dataset_rebuilds_in_an_empty_data_home(data_home: Path) -> None:
    """The shipped entries are rebuild-only (no public host yet): `download` rebuilds one from
    its recipe, with the registry's content checksum, which then counts as local and passes
    `verify` (but not `verify --published`: the metadata records a new creation time, so the
    file's bytes differ from the file the registry's sha256 pins)."""
    registry = load_registry()
    assert not any(entry.hosted for entry in registry.entries.values())
    prison = [e for e in registry.entries.values() if e.dataset_id.startswith("prison-")]
    entry = min(prison, key=lambda e: (e.stats["steps"], e.dataset_id))  # the fastest env
    assert not data_home.exists()
    runner = CliRunner()
    rebuilt = runner.invoke(datagen, ["download", entry.dataset_id])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"{entry.dataset_id} is rebuild-only (no mirror)" in rebuilt.output
    path = entry.local_path()
    assert f"rebuilt {entry.dataset_id} -> {path}" in rebuilt.output
    assert _content(path) == entry.content_checksum
    assert _sha256(path) != entry.sha256

    result = fetch(entry.dataset_id)  # nothing to do: the same content is local
    assert (result.transferred, result.rebuilt) == (False, False)
    assert (result.status, result.path) == ("same content", path)

    checked = runner.invoke(datagen, ["verify", entry.dataset_id])
    assert checked.exit_code == 0, checked.output
    assert f"OK the content of the published {entry.dataset_id}" in checked.output
    strict = runner.invoke(datagen, ["verify", entry.dataset_id, "--published"])
    assert strict.exit_code == 1
    assert "in a file with other bytes" in strict.output

    listed = runner.invoke(datagen, ["list", "--remote", "--json"])
    rows = {row["dataset_id"]: row for row in json.loads(listed.stdout)}
    assert rows[entry.dataset_id]["local"] == "same content"
    assert {row["local"] for key, row in rows.items() if key != entry.dataset_id} == {"not local"}


@pytest.mark.slow
def test_every_registry_dataset_rebuilds_from_its_recipe() -> None:
    for entry in load_registry().entries.values():
        result = fetch(entry.dataset_id)
        assert result.rebuilt, entry.dataset_id
        assert _content(entry.local_path()) == entry.content_checksum, entry.dataset_id


# ---------------------------------------------------------------------------- registry files


def _document(**changes: object) -> dict:
    entry = {
        "urls": [f"{BASE}/prison-n2-random-v1.h5"],
        "file": "prison-n2-random-v1.h5",
        "sha256": "a" * 64,
        "size": 10,
        "format": "hdf5",
        "content_checksum": "b" * 64,
        "stats": {},
        "recipe": {},
    }
    entry.update(changes)
    return {"registry_version": 1, "datasets": {"prison-n2-random-v1": entry}}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"sha256": "ABC"}, "sha256 must be 64 lowercase hex digits"),
        ({"urls": f"{BASE}/prison-n2-random-v1.h5"}, "urls must be a list of URLs"),
        ({"urls": ["ftp://example.org/x.h5"]}, "is not an http or https URL"),
        ({"format": "zarr"}, "published datasets are hdf5"),
        ({"file": "../escape.h5"}, "file must be a plain file name"),
        ({"size": 0}, "size must be a positive number"),
    ],
)
def test_bad_registry_entries_are_named(changes: dict, problem: str) -> None:
    with pytest.raises(
        UserError, match=f"registry r.json: entry 'prison-n2-random-v1': .*{problem}"
    ):
        parse_registry(_document(**changes), "r.json")


def test_an_entry_without_mirrors_is_rebuild_only() -> None:
    assert parse_registry(_document(), "r.json").get("prison-n2-random-v1").hosted
    assert not parse_registry(_document(urls=[]), "r.json").get("prison-n2-random-v1").hosted


def test_bad_registry_files_are_one_line_errors(tmp_path: Path) -> None:
    parse_registry(_document(), "r.json")  # the base document is valid
    document = _document()
    del document["datasets"]["prison-n2-random-v1"]["recipe"]
    with pytest.raises(UserError, match="missing field 'recipe'"):
        parse_registry(document, "r.json")
    with pytest.raises(UserError, match="registry_version 2 is not supported"):
        parse_registry({**_document(), "registry_version": 2}, "r.json")
    with pytest.raises(UserError, match="not a dataset id"):
        parse_registry({"registry_version": 1, "datasets": {"Pursuit": {}}}, "r.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_registry(broken)
    with pytest.raises(UserError, match="no registry file at"):
        load_registry(tmp_path / "absent.json")
    result = CliRunner().invoke(datagen, ["list", "--registry", str(broken)])
    assert result.exit_code == 2 and "--registry only applies with --remote" in result.output


# ------------------------------------------------------------------------------------ publish


def test_publish_writes_files_and_entries_and_merges_mirrors(tmp_path: Path) -> None:
    source = _tiny()
    out = tmp_path / "dist"
    registry_file = out / "registry.json"
    out.mkdir()
    # An entry of another id already there is kept.
    registry_file.write_text(
        json.dumps(
            {
                "registry_version": 1,
                "datasets": {
                    "prison-n4-random-v1": _document()["datasets"]["prison-n2-random-v1"]
                    | {"file": "prison-n4-random-v1.h5"}
                },
            }
        )
    )
    [entry] = publish(["prison-n2-random-v1"], BASE + "/", out)
    file = out / "prison-n2-random-v1.h5"
    assert entry.urls == (f"{BASE}/prison-n2-random-v1.h5",)
    assert (entry.sha256, entry.size) == (_sha256(file), file.stat().st_size)
    assert _sha256(file) == _sha256(source)  # an HDF5 dataset is copied as is
    assert entry.content_checksum == _content(source)
    with load_dataset(source) as dataset:
        meta = dataset.metadata
    assert entry.stats == {
        "episodes": 2,
        "steps": 300,
        "team_return_mean": meta["stats"]["mean"],
        "team_return_std": meta["stats"]["std"],
        "normalized_score": meta["normalized_score"],
        "coverage": meta["coverage"],
    }
    assert entry.recipe["command"] == (
        "marl-datagen collect --env prison --agents 2 --quality random --episodes 2 --seed 0"
    )
    assert entry.recipe["packages"] == meta["packages"]

    # Publishing again for a second host keeps the uploaded file and adds a mirror, even when
    # the local copy has other bytes by now (regenerated: same content, another created_at).
    with h5py.File(source, "r+") as handle:
        meta = json.loads(handle.attrs["metadata"])
        handle.attrs["metadata"] = json.dumps({**meta, "created_at": "2000-01-01T00:00:00+00:00"})
    assert _sha256(source) != entry.sha256
    publish(["prison-n2-random-v1"], "https://mirror.example.net/d", out)
    registry = load_registry(registry_file)
    assert set(registry.entries) == {"prison-n2-random-v1", "prison-n4-random-v1"}
    assert registry.entries["prison-n2-random-v1"].urls == (
        f"{BASE}/prison-n2-random-v1.h5",
        "https://mirror.example.net/d/prison-n2-random-v1.h5",
    )
    assert registry.entries["prison-n2-random-v1"].sha256 == entry.sha256

    # A dataset with new content replaces the file and the entry: the old mirrors served the
    # old bytes.
    _tiny(seed=1, force=True)
    [changed] = publish(["prison-n2-random-v1"], "https://third.example.net", out)
    after = load_registry(registry_file).entries["prison-n2-random-v1"]
    assert after.urls == ("https://third.example.net/prison-n2-random-v1.h5",)
    assert after.sha256 == changed.sha256 != entry.sha256


def test_publish_converts_zarr_to_hdf5_with_the_same_content(tmp_path: Path) -> None:
    source = _tiny(fmt="zarr")
    [entry] = publish([source], BASE, tmp_path / "dist")
    assert (tmp_path / "dist" / "prison-n2-random-v1.h5").is_file()
    assert entry.format == "hdf5"
    assert _content(tmp_path / "dist" / entry.file) == _content(source) == entry.content_checksum


def test_publish_refuses_bad_input(tmp_path: Path) -> None:
    source = _tiny()
    with pytest.raises(UserError, match="--base-url must be an http or https URL"):
        publish([source], "dist/", tmp_path / "dist")
    with h5py.File(source, "r+") as handle:  # metadata that no longer matches the arrays
        meta = json.loads(handle.attrs["metadata"])
        meta["stats"]["episode_returns"] = [100.0, 100.0]
        handle.attrs["metadata"] = json.dumps(meta)
    with pytest.raises(UserError, match="fails verification .*episode_returns.*; not published"):
        publish([source], BASE, tmp_path / "dist")
    assert not (tmp_path / "dist" / "registry.json").exists()


# -------------------------------------------------------------------------------------- recipes


def test_recipes_carry_modes_and_options_and_regenerate_the_content() -> None:
    request = CollectRequest(
        "prison",
        4,
        "degenerate",
        n_episodes=2,
        seed=7,
        degenerate_mode="saboteur",
        saboteur_fraction=0.5,
        options={"max_cycles": 40, "synchronized_start": True},
    )
    path = collect(request)
    with load_dataset(path) as dataset:
        recipe = recipe_of(dataset.metadata)
        content = dataset.metadata["content_checksum"]
    assert recipe["command"] == (
        "marl-datagen collect --env prison --agents 4 --quality degenerate "
        "--degenerate-mode saboteur --saboteur-fraction 0.5 --episodes 2 --seed 7 "
        "--option max_cycles=40 --option synchronized_start=true"
    )
    assert collect_request(recipe["command"]) == request  # the command reads back as made
    path.unlink()
    _run(recipe["command"])
    assert _content(path) == content


def test_a_recipe_keeps_the_version_and_options_of_any_type() -> None:
    request = CollectRequest(
        "prison",
        2,
        "random",
        n_episodes=1,
        seed=3,
        version=2,
        options={"max_cycles": 30, "obs_type": "vector"},
    )
    with load_dataset(collect(request)) as dataset:
        command = recipe_of(dataset.metadata)["command"]
    assert command.endswith("--seed 3 --version 2 --option max_cycles=30")  # default left out
    assert collect_request(command) == replace(request, options={"max_cycles": 30})


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("marl-datagen combine a b --into c", "not a marl-datagen collect command"),
        ("--agents two", "--agents expects int, got 'two'"),
        ("--agents 2 --workers 2", "--workers is not a flag of a recipe"),
        ("--agents 2 --seed", "--seed has no value"),
        ("--seed 0", "--agents is missing"),
    ],
)
def test_a_recipe_that_cannot_be_read_is_named(command: str, problem: str) -> None:
    if not command.startswith("marl-datagen"):
        command = f"marl-datagen collect --env prison --quality random --episodes 2 {command}"
    with pytest.raises(UserError, match=re.escape(problem)):
        collect_request(command)


def test_a_combined_dataset_recipe_regenerates_it_from_its_sources() -> None:
    _tiny("random")
    _tiny("expert")
    path = combine(
        ["prison-n2-random-v1", "prison-n2-expert-v1"],
        "prison-n2-half-v1",
        proportions=[0.5, 0.5],
        n_episodes=2,
        seed=3,
    )
    with load_dataset(path) as dataset:
        recipe = recipe_of(dataset.metadata)
        content = dataset.metadata["content_checksum"]
    assert recipe["command"] == (
        "marl-datagen combine prison-n2-random-v1 prison-n2-expert-v1 --into prison-n2-half-v1 "
        "--proportions 0.5,0.5 --episodes 2 --seed 3"
    )
    assert [s["dataset_id"] for s in recipe["sources"]] == [
        "prison-n2-random-v1",
        "prison-n2-expert-v1",
    ]
    path.unlink()
    _run(recipe["command"])
    assert _content(path) == content


# ------------------------------------------------------------------------------------- verify


def test_verify_says_when_a_dataset_is_not_published(tmp_path: Path) -> None:
    path = _tiny()
    registry_file = tmp_path / "empty.json"
    registry_file.write_text(json.dumps({"registry_version": 1, "datasets": {}}))
    runner = CliRunner()
    plain = runner.invoke(datagen, ["verify", str(path), "--registry", str(registry_file)])
    assert plain.exit_code == 0, plain.output
    assert "NOTE prison-n2-random-v1 is not in the registry" in plain.output
    strict = runner.invoke(
        datagen, ["verify", str(path), "--registry", str(registry_file), "--published"]
    )
    assert strict.exit_code == 1


def test_verify_flags_content_that_is_not_the_published_one(tmp_path: Path) -> None:
    path = _tiny()
    publish([path], BASE, tmp_path / "dist")
    registry_file = str(tmp_path / "dist" / "registry.json")
    converted = convert(path, "zarr")
    runner = CliRunner()
    # A Zarr copy: same content, no file to compare byte for byte.
    zarr_check = runner.invoke(datagen, ["verify", str(converted), "--registry", registry_file])
    assert "OK the content of the published prison-n2-random-v1" in zarr_check.output
    _tiny(seed=1, force=True)
    other = runner.invoke(datagen, ["verify", "prison-n2-random-v1", "--registry", registry_file])
    assert other.exit_code == 0
    assert "NOTE not the published prison-n2-random-v1" in other.output
    strict = runner.invoke(
        datagen, ["verify", "prison-n2-random-v1", "--registry", registry_file, "--published"]
    )
    assert strict.exit_code == 1 and "FAILED not the published" in strict.output
