"""Downloads through a real HTTP server on loopback (no mock of the transfer): by id, from the
cache, rejecting tampered bytes, falling back to the next mirror, retrying a transfer cut short,
and the commands `download`, `list --remote`, `publish` then `verify` end to end."""

from __future__ import annotations

import hashlib
import json
import socket
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
from datagen.dataset.registry import download, publish
from datagen.errors import UserError

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
    result = download(DATASET_ID, registry, retry_wait=0)
    assert result.transferred and result.url == hosts[0].url(FILE)
    assert result.path == DatasetId.parse(DATASET_ID).path("hdf5")
    assert _sha256(result.path) == _sha256(published / FILE)
    # The second call, and loading with download=True, find the file: no request.
    again = download(DATASET_ID, registry, retry_wait=0)
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
        download(DATASET_ID, registry, retry_wait=0)
    assert _leftovers(target.parent) == []  # neither the file nor a temporary
    assert hosts[0].requests[FILE] == 1  # full length, wrong bytes: not asked again
    # Not cached: once the host serves the right bytes, the next call transfers them.
    del hosts[0].broken[FILE]
    assert download(DATASET_ID, registry, retry_wait=0).transferred
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
    result = download(DATASET_ID, registry, retries=2, retry_wait=0)
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
    result = download(DATASET_ID, registry, retries=2, retry_wait=0)
    assert result.transferred and hosts[0].requests[FILE] == 3
    assert _sha256(result.path) == _sha256(published / FILE)
    assert _leftovers(result.path.parent) == [result.path.name]


def test_every_mirror_failing_names_each_failure_and_the_recipe(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    hosts[0].broken[FILE] = "cut"
    registry = _registry(tmp_path, published, [hosts[0].url(FILE), hosts[1].url("missing.h5")])
    with pytest.raises(UserError) as caught:
        download(DATASET_ID, registry, retries=1, retry_wait=0)
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
        download("prison-n2-randm-v1", published / "registry.json")
    with pytest.raises(UserError, match="see `marl-datagen list --remote`"):
        download("waterworld-n16-expert-v9", published / "registry.json")


def test_a_different_local_dataset_is_kept_unless_forced(
    hosts: list[LoopbackHost], published: Path, tmp_path: Path
) -> None:
    _serve(hosts, published)
    registry = _registry(tmp_path, published, [hosts[0].url(FILE)])
    mine = collect(CollectRequest("prison", 2, "random", n_episodes=1, seed=5))
    with pytest.raises(UserError, match="whose content is not the published one"):
        download(DATASET_ID, registry, retry_wait=0)
    assert hosts[0].requests[FILE] == 0
    result = download(DATASET_ID, registry, force=True, retry_wait=0)
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
    fetched = download("prison-n2-expert-v1", registry_url, retry_wait=0)
    assert _sha256(fetched.path) == _sha256(dist / "prison-n2-expert-v1.h5")
    with load_dataset("prison-n2-expert-v1") as dataset:
        assert dataset.metadata["content_checksum"] == content
    checked = CliRunner().invoke(
        datagen, ["verify", "prison-n2-expert-v1", "--registry", registry_url, "--published"]
    )
    assert checked.exit_code == 0, checked.output
