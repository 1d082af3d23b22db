"""Downloads through a real HTTP server on loopback (no mock of the transfer): by id, from the
cache, rejecting tampered bytes, falling back to the next mirror, retrying a transfer cut short,
rebuilding from the recipe when no mirror serves the file, and the commands `download`,
`list --remote`, `publish` then `verify` end to end."""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from datagen import load_dataset
from datagen.cli import main as datagen
from datagen.collect import CollectRequest, collect
from datagen.dataset import DatasetId
from datagen.errors import UserError
from datagen.fetch import fetch
from datagen.publishing import publish

DATASET_ID = "prison-n2-random-v1"
FILE = f"{DATASET_ID}.h5"


class LoopbackHost:
    """A static file host on 127.0.0.1 whose answers can be scripted per file.

    `faults[name]` is a list of answers used one per request, then "ok": "500" (server error),
    "cut" (half the body, then the connection closes), "tampered" (the full length, one byte
    changed). `broken[name]` answers every request with that fault. `requests` counts requests
    per file.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.broken: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                name = self.path.lstrip("/")
                host.requests[name] += 1
                fault = host.faults[name].pop(0) if host.faults[name] else "ok"
                fault = host.broken.get(name, fault)
                body = host.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                if fault == "500":
                    self.send_error(500)
                    return
                if fault == "tampered":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LoopbackHost]]:
    """Two running hosts (two mirrors)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    started = [LoopbackHost(), LoopbackHost()]
    for host in started:
        host.thread.start()
    yield started
    for host in started:
        host.server.shutdown()
        host.server.server_close()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset (prison, 2 agents, 2 episodes) published into a folder."""
    root = tmp_path_factory.mktemp("published")
    source = collect(
        CollectRequest("prison", 2, "random", n_episodes=2, seed=0, out=root / "source.h5")
    )
    publish([source], "http://placeholder.invalid/datasets", root / "dist")
    return root / "dist"


def _serve(hosts: list[LoopbackHost], published: Path) -> None:
    for host in hosts:
        for path in published.iterdir():
            host.files[path.name] = path.read_bytes()


def _registry(tmp_path: Path, published: Path, urls: list[str]) -> Path:
    """The published registry with the entry's mirrors replaced by `urls`."""
    document = json.loads((published / "registry.json").read_text())
    document["datasets"][DATASET_ID]["urls"] = urls
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_by_id_then_load_from_the_cache(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    result = fetch(DATASET_ID, registry, retry_wait=0)
    assert result.transferred and result.url == hosts[0].url(FILE)
    assert result.path == DatasetId.parse(DATASET_ID).path("hdf5")
    assert _sha256(result.path) == _sha256(published / FILE)
    # The second call, and loading with download=True, find the file: no request.
    again = fetch(DATASET_ID, registry, retry_wait=0)
    assert (again.transferred, again.status) == (False, "published file")
    with load_dataset(DATASET_ID, download=True, registry=registry) as dataset:
        assert dataset.metadata["totals"]["episodes"] == 2
        dataset.load()  # every array checksum holds
    assert hosts[0].requests[FILE] == 1


def test_load_dataset_downloads_a_missing_id(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    with pytest.raises(UserError, match="no local dataset"):
        load_dataset(DATASET_ID)
    with load_dataset(DATASET_ID, download=True, registry=registry) as dataset:
        assert dataset.path == DatasetId.parse(DATASET_ID).path("hdf5")
    assert hosts[0].requests[FILE] == 1


def test_a_tampered_file_is_rejected_and_not_cached(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    hosts[0].broken[FILE] = "tampered"
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    target = DatasetId.parse(DATASET_ID).path("hdf5")
    with pytest.raises(UserError, match="sha256 mismatch, the file served differs"):
        fetch(DATASET_ID, registry, rebuild=False, retry_wait=0)
    assert _leftovers(target.parent) == []  # neither the file nor a temporary
    assert hosts[0].requests[FILE] == 1  # full length, wrong bytes: not asked again
    # Not cached: once the host serves the right bytes, the next call transfers them.
    del hosts[0].broken[FILE]
    assert fetch(DATASET_ID, registry, retry_wait=0).transferred
    assert _sha256(target) == _sha256(published / FILE)


def test_falls_back_to_the_next_mirror(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    with socket.socket() as closed:  # a port nothing listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/{FILE}"
    hosts[0].broken[FILE] = "500"
    registry = _registry(tmp_path, published, [dead, hosts[0].url(FILE), hosts[1].url(FILE)])
    result = fetch(DATASET_ID, registry, retries=2, retry_wait=0)
    assert result.url == hosts[1].url(FILE)
    assert hosts[0].requests[FILE] == 3  # a 5xx is retried twice before the next mirror
    assert hosts[1].requests[FILE] == 1
    assert _sha256(result.path) == _sha256(published / FILE)


def test_an_interrupted_transfer_is_retried(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    hosts[0].faults[FILE] = ["cut", "cut"]
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    result = fetch(DATASET_ID, registry, retries=2, retry_wait=0)
    assert result.transferred and hosts[0].requests[FILE] == 3
    assert _sha256(result.path) == _sha256(published / FILE)
    assert _leftovers(result.path.parent) == [result.path.name]


def test_without_rebuild_every_mirror_failing_names_each_failure_and_the_recipe(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    hosts[0].broken[FILE] = "cut"
    registry = _registry(tmp_path, published, [hosts[0].url(FILE), hosts[1].url("missing.h5")])
    with pytest.raises(UserError) as caught:
        fetch(DATASET_ID, registry, rebuild=False, retries=1, retry_wait=0)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{hosts[0].url(FILE)}: transfer cut short" in message
    assert f"{hosts[1].url('missing.h5')}: HTTP 404" in message
    assert (
        "regenerate it instead with `marl-datagen collect --env prison --agents 2 "
        "--quality random --episodes 2 --seed 0`" in message
    )
    assert hosts[0].requests[FILE] == 2 and hosts[1].requests["missing.h5"] == 1  # 404: no retry
    assert _leftovers(DatasetId.parse(DATASET_ID).path("hdf5").parent) == []


def test_an_unknown_id_names_the_closest_ids(published: Path) -> None:
    with pytest.raises(
        UserError,
        match=r"'prison-n2-randm-v1' is not in the registry .*"
        r"closest ids: prison-n2-random-v1$",
    ):
        fetch("prison-n2-randm-v1", published / "registry.json")
    with pytest.raises(UserError, match="see `marl-datagen list --remote`"):
        fetch("waterworld-n16-expert-v9", published / "registry.json")


def test_a_different_local_dataset_is_kept_unless_forced(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    mine = collect(CollectRequest("prison", 2, "random", n_episodes=1, seed=5))
    with pytest.raises(UserError, match="whose content is not the published one"):
        fetch(DATASET_ID, registry, retry_wait=0)
    assert hosts[0].requests[FILE] == 0
    result = fetch(DATASET_ID, registry, force=True, retry_wait=0)
    assert result.path == mine and _sha256(mine) == _sha256(published / FILE)


def test_cli_download_list_remote_publish_and_verify(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    _serve(hosts, published)
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])

    def remote() -> dict:
        result = runner.invoke(datagen, ["list", "--remote", "--json", "--registry", str(registry)])
        assert result.exit_code == 0, result.output
        return {row["dataset_id"]: row for row in json.loads(result.stdout)}

    row = remote()[DATASET_ID]
    assert (row["local"], row["episodes"], row["steps"], row["mirrors"]) == ("not local", 2, 300, 1)
    assert row["size_bytes"] == (published / FILE).stat().st_size

    first = runner.invoke(datagen, ["download", DATASET_ID, "--registry", str(registry)])
    assert first.exit_code == 0, first.output
    assert f"downloaded {DATASET_ID}" in first.output
    second = runner.invoke(datagen, ["download", DATASET_ID, "--registry", str(registry)])
    assert "already local" in second.output and "(published file)" in second.output
    assert hosts[0].requests[FILE] == 1
    assert remote()[DATASET_ID]["local"] == "published file"

    table = runner.invoke(datagen, ["list", "--remote", "--registry", str(registry)])
    assert DATASET_ID in table.output and "published file" in table.output

    checked = runner.invoke(
        datagen, ["verify", DATASET_ID, "--registry", str(registry), "--published"]
    )
    assert checked.exit_code == 0, checked.output
    assert "OK the published file of prison-n2-random-v1" in checked.output

    unknown = runner.invoke(
        datagen, ["download", "prison-n2-randm-v1", "--registry", str(registry)]
    )
    assert unknown.exit_code == 2
    assert unknown.output.count("\n") == 1 and "closest ids: prison-n2-random-v1" in unknown.output


def test_publish_serve_download_verify_end_to_end(
    hosts: list[LoopbackHost], tmp_path: Path
) -> None:
    """What a maintainer and a user do: publish with the host's URL, upload (here: serve the
    folder), then download with the published registry, given as a URL."""
    collect(CollectRequest("prison", 2, "expert", n_episodes=2, seed=3))
    dist = tmp_path / "dist"
    base = hosts[0].url("").rstrip("/")
    result = CliRunner().invoke(
        datagen, ["publish", "prison-n2-expert-v1", "--base-url", base, "--out", str(dist)]
    )
    assert result.exit_code == 0, result.output
    _serve(hosts, dist)
    original = DatasetId.parse("prison-n2-expert-v1").path("hdf5")
    content = load_dataset(original).metadata["content_checksum"]
    original.unlink()
    registry_url = hosts[0].url("registry.json")
    fetched = fetch("prison-n2-expert-v1", registry_url, retry_wait=0)
    assert _sha256(fetched.path) == _sha256(dist / "prison-n2-expert-v1.h5")
    with load_dataset("prison-n2-expert-v1") as dataset:
        assert dataset.metadata["content_checksum"] == content
    checked = CliRunner().invoke(
        datagen, ["verify", "prison-n2-expert-v1", "--registry", registry_url, "--published"]
    )
    assert checked.exit_code == 0, checked.output


# ------------------------------------------------------------------------ download-or-rebuild

RECIPE = "marl-datagen collect --env prison --agents 2 --quality random --episodes 2 --seed 0"


def _files(directory: Path) -> list[str]:
    """Every file under `directory`, relative to it."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary directory, where a rebuild collects, as an empty folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _rebuild_only(tmp_path: Path, published: Path, content_checksum: str | None = None) -> Path:
    """The published registry with no mirror for the entry (and, given, another checksum)."""
    registry = _registry(tmp_path, published, [])
    if content_checksum is not None:
        document = json.loads(registry.read_text())
        document["datasets"][DATASET_ID]["content_checksum"] = content_checksum
        registry.write_text(json.dumps(document))
    return registry


def _published_content(published: Path) -> str:
    return json.loads((published / "registry.json").read_text())["datasets"][DATASET_ID][
        "content_checksum"
    ]


def test_a_dataset_no_mirror_serves_is_rebuilt_from_its_recipe(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path, data_home: Path, scratch: Path
) -> None:
    _serve(hosts, published)
    hosts[0].broken[FILE] = "500"
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    result = CliRunner().invoke(
        datagen, ["download", DATASET_ID, "--registry", str(registry), "--retries", "0"]
    )
    assert result.exit_code == 0, result.output
    path = DatasetId.parse(DATASET_ID).path("hdf5")
    assert result.output.splitlines() == [
        f"no mirror served {DATASET_ID} ({hosts[0].url(FILE)}: HTTP 500); "
        f"rebuilding it from its recipe: {RECIPE}",
        f"rebuilt {DATASET_ID} -> {path} (content_checksum verified)",
    ]
    assert hosts[0].requests[FILE] == 1
    assert _files(data_home) == ["prison/n2/random-v1.h5"]  # no staging, no temporary
    assert _files(scratch) == []  # the scratch collection is gone too
    with load_dataset(DATASET_ID) as dataset:
        assert dataset.metadata["content_checksum"] == _published_content(published)
    checked = CliRunner().invoke(datagen, ["verify", DATASET_ID, "--registry", str(registry)])
    assert checked.exit_code == 0, checked.output
    # Rebuilt within the published file's second, the bytes are the same: either verdict is OK.
    last = checked.output.splitlines()[-1]
    assert last.startswith("OK the ") and DATASET_ID in last


def test_load_dataset_rebuilds_a_rebuild_only_id(
    published: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = _rebuild_only(tmp_path, published)
    with load_dataset(DATASET_ID, download=True, registry=registry) as dataset:
        assert dataset.path == DatasetId.parse(DATASET_ID).path("hdf5")
        assert dataset.metadata["content_checksum"] == _published_content(published)
    assert capsys.readouterr().err == (
        f"{DATASET_ID} is rebuild-only (no mirror); rebuilding it from its recipe: {RECIPE}\n"
    )
    again = fetch(DATASET_ID, registry)  # local now: neither fetched nor rebuilt again
    assert (again.transferred, again.rebuilt) == (False, False)
    assert again.status in ("same content", "published file")  # same bytes within one second


def test_a_rebuild_with_another_content_checksum_is_refused_and_leaves_nothing(
    published: Path, tmp_path: Path, data_home: Path, scratch: Path
) -> None:
    registry = _rebuild_only(tmp_path, published, content_checksum="0" * 64)
    result = CliRunner().invoke(datagen, ["download", DATASET_ID, "--registry", str(registry)])
    assert result.exit_code == 2
    notice, error = result.output.splitlines()
    assert notice.endswith(f"rebuilding it from its recipe: {RECIPE}")
    assert error.startswith(
        f"Error: the rebuilt {DATASET_ID} has content_checksum {_published_content(published)}, "
        f"the registry lists {'0' * 64}; not cached"
    )
    assert _files(data_home) == [] and _files(scratch) == []


def test_no_rebuild_refuses_a_dataset_no_mirror_serves(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path, data_home: Path
) -> None:
    registry = _rebuild_only(tmp_path, published)
    result = CliRunner().invoke(
        datagen, ["download", DATASET_ID, "--registry", str(registry), "--no-rebuild"]
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert (
        "it is rebuild-only (the registry lists no mirror) and rebuilding is off" in result.output
    )
    assert f"regenerate it instead with `{RECIPE}`" in result.output
    with pytest.raises(UserError, match="rebuild-only"):
        load_dataset(DATASET_ID, download=True, registry=registry, rebuild=False)
    _serve(hosts, published)
    hosts[0].broken[FILE] = "cut"
    hosted = _registry(tmp_path, published, [hosts[0].url(FILE)])
    with pytest.raises(UserError, match=r"from its 1 mirror\(s\): .*: transfer cut short"):
        fetch(DATASET_ID, hosted, rebuild=False, retries=0)
    assert _files(data_home) == []


def test_a_combined_dataset_is_not_rebuilt(published: Path, tmp_path: Path) -> None:
    registry = _rebuild_only(tmp_path, published)
    document = json.loads(registry.read_text())
    combined = "marl-datagen combine a b --into prison-n2-random-v1"
    document["datasets"][DATASET_ID]["recipe"]["command"] = combined
    registry.write_text(json.dumps(document))
    with pytest.raises(UserError, match=f"combined from other datasets .*run `{combined}`$"):
        fetch(DATASET_ID, registry)


def test_list_remote_says_hosted_or_rebuild_only(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    document = json.loads(registry.read_text())
    other = "prison-n4-random-v1"
    document["datasets"][other] = document["datasets"][DATASET_ID] | {
        "urls": [],
        "file": f"{other}.h5",
    }
    registry.write_text(json.dumps(document))
    runner = CliRunner()
    listed = runner.invoke(datagen, ["list", "--remote", "--json", "--registry", str(registry)])
    assert listed.exit_code == 0, listed.output
    rows = {row["dataset_id"]: row for row in json.loads(listed.stdout)}
    assert {key: (row["hosting"], row["mirrors"]) for key, row in rows.items()} == {
        DATASET_ID: ("hosted", 1),
        other: ("rebuild-only", 0),
    }
    table = runner.invoke(datagen, ["list", "--remote", "--registry", str(registry)])
    lines = {line.split()[1]: line for line in table.output.splitlines() if "prison-n" in line}
    assert " hosted " in lines[DATASET_ID] and " rebuild-only " in lines[other]
