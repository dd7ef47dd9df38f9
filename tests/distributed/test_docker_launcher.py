"""Workers on demand in Docker containers (``launcher = "docker"``): a server
with a broker and no worker starts a container when a build waits, the worker
in it runs the build and exits after its idle time, and its container is
removed; a launch from an image that does not exist is retried with back-off,
counted and shown; a server removes its own containers left from a previous
run; a pushed pipeline cannot choose the launcher or its image.

Real Redis and PostgreSQL (tests/distributed/cluster.py) on 127.0.0.1, and the
test session's private dockerd (tests/sandbox/conftest.py), whose containers
run on the host's network. The image is the debootstrapped Debian base with
the host's /usr (git), this Python and this checkout mounted read-only, so no
image build or registry is needed; the worker in it is this checkout's
``sauci worker``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cluster import ended, start_server
from polling import wait_for

from sauci.core.events import subscribe
from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFIX = Path(sys.prefix).resolve()

# The private dockerd and the Debian base image of tests/sandbox, as fixtures here.
_spec = importlib.util.spec_from_file_location(
    "sauci_sandbox_fixtures_latent", ROOT / "tests" / "sandbox" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_sandbox_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sandbox_fixtures)
dockerd = _sandbox_fixtures.dockerd
debian_image = _sandbox_fixtures.debian_image


@pytest.fixture
def docker_host(dockerd, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", dockerd)
    return dockerd


def make_repo(path: Path, files: dict[str, str] | None = None) -> str:
    path.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env.update(GIT_COMMITTER_EMAIL="t@x", PATH=os.environ["PATH"])
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    files = files or {".sauci.yml": "steps:\n  hello:\n    run: echo built by $SAUCI_BUILD_ID\n"}
    for name, text in files.items():
        (path / name).write_text(text)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return str(path)


def docker_settings(tmp_path: Path, image: str) -> dict:
    """The launcher's settings: the image, with what the worker needs mounted."""
    return {
        "launcher": "docker",
        "launch_image": image,
        "launch_volumes": (
            "/usr:/usr:ro",
            f"{PREFIX}:{PREFIX}:ro",
            f"{ROOT}:{ROOT}:ro",
            f"{tmp_path}:{tmp_path}:ro",  # the repository, cloned by its path
        ),
        "launch_command": f"env PYTHONPATH={ROOT} {sys.executable} -m sauci worker",
    }


def queue(store, repo: str) -> int:
    request = BuildRequest(repo=repo, ref="refs/heads/main", event="push")
    return Scheduler(store).enqueue(request).id


def started(client, scaler):
    """The running containers, once there are; a failed launch fails the test."""
    if scaler.failures:
        pytest.fail(f"a launch failed: {scaler.last_failure}")
    return client.containers.list()


def test_a_build_with_no_worker_runs_in_a_container_that_exits_and_is_removed(
    cluster, docker_host, debian_image, tmp_path
):
    import docker

    client = docker.DockerClient(base_url=docker_host, version="auto")
    repo = make_repo(tmp_path / "repo")
    store = cluster.store()
    settings = docker_settings(tmp_path, debian_image)
    server = start_server(cluster, launch_workers=1, launch_idle=1.0, **settings)
    scaler = server.runner.autoscaler
    launcher = scaler.launcher
    assert [] == store.list_workers()
    assert [] == client.containers.list(all=True)  # no work: nothing runs but the server

    build_id = queue(store, repo)
    [container] = wait_for(lambda: started(client, scaler), "a container to be started")
    assert debian_image in container.image.tags
    assert "host" == container.attrs["HostConfig"]["NetworkMode"]
    assert launcher.owner == container.labels["org.sauci.launched-by"]
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert cluster.pg.url() == env["SAUCI_STORE"] and cluster.broker() == env["SAUCI_BROKER"]
    assert "DOCKER_HOST" not in env  # the server's environment stays with the server

    build = wait_for(lambda: ended(store, build_id), "the build to finish", timeout=120)
    assert Status.PASSED == build.status, build.reason
    assert build.claimed_by == container.labels["org.sauci.worker"]
    assert f"built by {build_id}" in store.read_log(build_id, "hello").decode()

    # Idle for launch_idle: the worker exits cleanly and its container is removed.
    wait_for(lambda: not scaler.launched, "the launched worker to exit when idle")
    assert [] == client.containers.list(all=True)
    wait_for(lambda: store.list_workers() == [], "the worker's record to go")
    assert (1, 0) == (scaler.started, scaler.failures)


def test_an_image_that_does_not_exist_is_retried_with_back_off_counted_and_shown(
    cluster, docker_host, tmp_path
):
    import docker

    from sauci.monitoring.metrics import Metrics

    client = docker.DockerClient(base_url=docker_host, version="auto")
    metrics = Metrics()
    unsubscribe = subscribe(metrics.on_event)
    repo = make_repo(tmp_path / "repo")
    store = cluster.store()
    try:
        server = start_server(cluster, launch_workers=1, **docker_settings(tmp_path, "no/such:1"))
        scaler = server.runner.autoscaler
        build_id = queue(store, repo)
        wait_for(lambda: scaler.failures >= 2, "two launches to fail")
        assert 0 == scaler.started
        assert scaler.failing >= 2  # in a row: the back-off doubles with them
        assert "image 'no/such:1' not found" in (scaler.last_failure or "")
        assert metrics.worker_launch_failures._value.get() >= 2.0
        assert Status.QUEUED == store.get_build(build_id).status  # not lost: it waits
        assert [] == client.containers.list(all=True)  # nothing left behind
    finally:
        unsubscribe()

    def shown():  # server.json is rewritten about once a second
        status = json.loads((cluster.tmp / "server" / "server.json").read_text())
        return status["launcher"]["failures"] >= 2 and status["launcher"]

    assert "not found" in wait_for(shown, "server.json to show the failures")["last_failure"]


def test_a_server_removes_the_containers_a_previous_run_of_it_left(
    docker_host, debian_image, tmp_path
):
    import docker

    from sauci.core.config import Settings
    from sauci.distributed._docker_launcher import OWNER_LABEL, DockerLauncher

    client = docker.DockerClient(base_url=docker_host, version="auto")
    settings = Settings(data_dir=tmp_path / "server", launcher="docker", launch_image=debian_image)
    owner = DockerLauncher.from_settings(settings).owner
    other = client.containers.create(
        debian_image, ["sleep", "600"], labels={OWNER_LABEL: "another-server"}
    )
    left = client.containers.run(
        debian_image, ["sleep", "600"], detach=True, labels={OWNER_LABEL: owner}
    )
    try:
        assert 1 == DockerLauncher.from_settings(settings).sweep()
        assert [other.id] == [c.id for c in client.containers.list(all=True)]
    finally:
        for c in (left, other):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)


HOSTILE_TOML = '[sauci]\nlauncher = "process"\nlaunch_image = "evil/image"\n'
HOSTILE_PIPELINE = """\
env:
  SAUCI_LAUNCHER: process
  SAUCI_LAUNCH_IMAGE: evil/image
steps:
  hello:
    run: echo launcher=$SAUCI_LAUNCHER; test ! -e /var/run/docker.sock && echo no-socket
"""


def test_a_pushed_pipeline_cannot_choose_or_alter_the_launcher_or_its_image(
    cluster, docker_host, debian_image, tmp_path
):
    import docker

    client = docker.DockerClient(base_url=docker_host, version="auto")
    # A repository whose sauci.toml and pipeline env name another launcher and image.
    files = {".sauci.yml": HOSTILE_PIPELINE, "sauci.toml": HOSTILE_TOML}
    repo = make_repo(tmp_path / "repo", files)
    store = cluster.store()
    settings = docker_settings(tmp_path, debian_image)
    server = start_server(cluster, launch_workers=1, launch_idle=1.0, **settings)
    scaler = server.runner.autoscaler
    images = []
    for _ in range(2):  # the second launch comes after the hostile build ran
        build_id = queue(store, repo)
        running = wait_for(lambda: started(client, scaler), "a container to be started")
        images += [c.image.tags for c in running]
        build = wait_for(lambda: ended(store, build_id), "the build to finish", timeout=120)  # noqa: B023
        assert Status.PASSED == build.status, build.reason
        assert "no-socket" in store.read_log(build_id, "hello").decode()  # no daemon to reach
        wait_for(lambda: not scaler.launched, "the launched worker to exit when idle")
    assert [[debian_image], [debian_image]] == images
    assert ("docker", debian_image) == (server.settings.launcher, scaler.launcher.image)
    assert 2 == scaler.started


def test_launcher_and_image_are_pipeline_errors_not_settings(tmp_path):
    from sauci.core.pipeline import load_pipeline
    from sauci.exceptions import PipelineError

    path = tmp_path / ".sauci.yml"
    path.write_text("launcher: docker\nlaunch_image: evil\nsteps:\n  a:\n    run: 'true'\n")
    with pytest.raises(PipelineError) as raised:
        load_pipeline(str(path))
    assert f"{path}:1:1: unknown key 'launcher'" in str(raised.value)
    assert f"{path}:2:1: unknown key 'launch_image'" in str(raised.value)


def test_the_deploy_image_runs_as_a_launched_worker(cluster, docker_host, debian_image, tmp_path):
    """deploy/Dockerfile's image (entrypoint ``sauci``, its own user and Python)
    with the launcher's default command: no mounts, the repository served by
    git daemon. Built as tests/sandbox/test_compose_stack.py builds it, but in
    this directory's own dockerd, so without its layers (minutes: apt and pip
    inside): it runs with SAUCI_LAUNCH_DEPLOY_IMAGE=1, which CI does not set
    (the other tests here launch the Debian base with the host's Python)."""
    import shutil

    import docker
    from served_repo import served_repo

    if not os.environ.get("SAUCI_LAUNCH_DEPLOY_IMAGE"):
        pytest.skip("builds deploy/Dockerfile's image (minutes): set SAUCI_LAUNCH_DEPLOY_IMAGE=1")
    env = {**os.environ, "DOCKER_HOST": docker_host}

    def build(context: Path, tag: str, *extra: str) -> None:
        done = subprocess.run(
            ["docker", "build", "-q", "--network", "host", "-t", tag, *extra, str(context)],
            env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        assert 0 == done.returncode, done.stderr[-3000:]

    base = tmp_path / "base"
    (base / "certs").mkdir(parents=True)
    for crt in Path("/usr/local/share/ca-certificates").glob("**/*.crt"):
        shutil.copy(crt, base / "certs")
    (base / "Dockerfile").write_text(
        f"FROM {debian_image}\nCOPY certs/ /usr/local/share/ca-certificates/\n"
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n"
    )
    build(base, "sauci-ci/base")
    build(ROOT, "sauci:latest", "-f", str(ROOT / "deploy" / "Dockerfile"), "--build-arg",
          "BASE=sauci-ci/base")  # fmt: skip
    client = docker.DockerClient(base_url=docker_host, version="auto")
    store = cluster.store()
    pipeline = "steps:\n  hello:\n    run: echo built as $(id -u)\n"
    with served_repo(tmp_path / "served", pipeline) as url:
        server = start_server(
            cluster, launch_workers=1, launch_idle=1.0, launcher="docker",
            launch_image="sauci:latest",
        )  # fmt: skip
        scaler = server.runner.autoscaler
        build_id = queue(store, url)
        build_ = wait_for(lambda: ended(store, build_id), "the build to finish", timeout=180)
        assert Status.PASSED == build_.status, build_.reason
        assert "built as 10001" in store.read_log(build_id, "hello").decode()
        wait_for(lambda: not scaler.launched, "the launched worker to exit when idle")
        assert [] == client.containers.list(all=True)
        assert (1, 0) == (scaler.started, scaler.failures)
