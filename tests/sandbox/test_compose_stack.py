"""deploy/ run as it is: the image built from deploy/Dockerfile and the Compose
file brought up with Debian's docker-compose on the private Docker daemon of
the test session, until the server's and a worker's /readyz answer (their
health checks). It lives beside the Docker sandbox tests for their fixtures
(the daemon, the debootstrapped Debian base).

No image registry is reachable here, so the images are built on the local
Debian base: the Dockerfile's own ``BASE`` argument, with this machine's CA
certificates added (the package registries may be reached through a proxy
that signs with them); Redis is Debian's redis-server under the tag the
Compose file names. PostgreSQL, Prometheus and Grafana are not started: the
server and the worker share an SQLite store on the ``shared`` volume.

Slow (a few minutes: apt and pip inside the build): it runs when
SAUCI_COMPOSE_UP=1, as .ci/run sets.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROJECT = "sauci-ci"

pytestmark = pytest.mark.slow


@pytest.fixture
def compose_env(dockerd: str) -> dict[str, str]:
    if not os.environ.get("SAUCI_COMPOSE_UP"):
        pytest.skip("brings up deploy/compose.yaml (minutes): set SAUCI_COMPOSE_UP=1")
    if shutil.which("docker-compose") is None or shutil.which("docker") is None:
        pytest.fail("SAUCI_COMPOSE_UP is set but docker-compose or docker is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {
        **os.environ,
        "DOCKER_HOST": dockerd,
        "SAUCI_ADMIN_PASSWORD": "compose-test",
        "SAUCI_METRICS_TOKEN": "compose-test-token",
        "SAUCI_PORT": str(port),
    }


def run(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert 0 == done.returncode, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def build(env: dict[str, str], context: Path, tag: str, *extra: str) -> None:
    # --network host: the daemon runs with --bridge=none; builds reach the registries.
    run(env, "docker", "build", "-q", "--network", "host", "-t", tag, *extra, str(context))


def test_compose_brings_up_a_server_and_a_worker_that_answer_readyz(
    compose_env, debian_image, tmp_path
):
    env = compose_env
    base = tmp_path / "base"
    (base / "certs").mkdir(parents=True)
    for crt in Path("/usr/local/share/ca-certificates").glob("**/*.crt"):
        shutil.copy(crt, base / "certs")
    (base / "Dockerfile").write_text(
        f"FROM {debian_image}\n"
        "COPY certs/ /usr/local/share/ca-certificates/\n"
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n"
    )
    build(env, base, "sauci-ci/base")
    build(
        env, ROOT, "sauci:latest", "-f", str(DEPLOY / "Dockerfile"), "--build-arg",
        "BASE=sauci-ci/base",
    )  # fmt: skip
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    redis = tmp_path / "redis"
    redis.mkdir()
    (redis / "Dockerfile").write_text(
        "FROM sauci-ci/base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends redis-server"
        " && rm -rf /var/lib/apt/lists/*\n"
    )
    build(env, redis, compose["services"]["redis"]["image"])
    store = "sqlite:////var/lib/sauci-shared/sauci.db"
    override = tmp_path / "override.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "server": {"environment": {"SAUCI_STORE": store}},
                    "worker": {"environment": {"SAUCI_STORE": store}, "deploy": {"replicas": 1}},
                    # The official image turns protected mode off; Debian's does not.
                    "redis": {"command": ["redis-server", "--save", "", "--protected-mode", "no"]},
                }
            }
        )
    )
    files = ["-p", PROJECT, "-f", str(DEPLOY / "compose.yaml"), "-f", str(override)]
    try:
        run(env, "docker-compose", *files, "up", "-d", "--no-deps", "redis", "server", "worker")
        deadline = time.monotonic() + 240
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            ids = run(env, "docker-compose", *files, "ps", "-q", "server", "worker").split()
            health = {
                cid: run(env, "docker", "inspect", "-f", "{{.State.Health.Status}}", cid).strip()
                for cid in ids
            }
            if len(health) == 2 and set(health.values()) == {"healthy"}:
                break
            time.sleep(2)
        logs = run(env, "docker-compose", *files, "logs", "--tail", "30")
        assert ["healthy", "healthy"] == sorted(health.values()), logs
        # The worker is seen by the server: both read the same store through its name.
        workers = run(env, "docker-compose", *files, "exec", "-T", "server", "sauci", "workers")
        (header, row) = workers.strip().splitlines()  # one worker, with its labels
        assert header.split()[:3] == ["NAME", "HOST", "LABELS"]
        # (its CAPACITY cell, "2 CPUs, 7.8 GiB", has spaces: the state is found by word)
        assert ["docker", "linux"] == sorted(row.split()[2].split(","))
        assert "online" in row.split()
        user = run(env, "docker-compose", *files, "exec", "-T", "server", "id", "-u").strip()
        assert "10001" == user  # the image's own user, not root
    finally:
        subprocess.run(
            ["docker-compose", *files, "down", "-v", "--remove-orphans"],
            env=env,
            capture_output=True,
            timeout=300,
        )
