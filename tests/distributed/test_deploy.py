"""deploy/: the files parse, and what they run, set and expose fits SauCI.

Docker images cannot be pulled and no Kubernetes API server runs here, so
this checks the files themselves (docs/deploy.md says what was not run):
YAML parses, every command line parses with SauCI's own argument parser,
every SAUCI_* variable is a setting, ports and secret keys agree.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import attrs
import pytest
import yaml

from sauci.core.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# Variables that are not Settings fields but are read by name elsewhere.
OTHER_VARIABLES = {
    "SAUCI_ADMIN_PASSWORD",
    "SAUCI_WEBHOOK_SECRET",
    "SAUCI_METRICS_TOKEN",
    "SAUCI_DATA_DIR",
}
SETTINGS = {f"SAUCI_{f.name.upper()}" for f in attrs.fields(Settings)}


def parser() -> argparse.ArgumentParser:
    """The `sauci` command's own parser: the commands in deploy/ must run as written."""
    from sauci.cli import build_parser

    return build_parser()


def check_variables(names) -> None:
    unknown = {n for n in names if n.startswith("SAUCI_")} - SETTINGS - OTHER_VARIABLES
    assert set() == unknown


def test_the_dockerfile_installs_the_extras_and_runs_sauci():
    import tomllib

    text = (DEPLOY / "Dockerfile").read_text()
    (extras,) = re.findall(r"pip install [^']*'\.\[([a-z,]+)\]'", text)
    pyproject = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    defined = set(pyproject["project"]["optional-dependencies"])
    assert set(extras.split(",")) <= defined
    # A server and workers on PostgreSQL and Celery, with the UI and its metrics.
    assert {"postgres", "celery", "django", "metrics"} <= set(extras.split(","))
    assert 'ENTRYPOINT ["sauci"]' in text
    assert "EXPOSE 8000" in text
    check_variables(re.findall(r"SAUCI_[A-Z_]+", text))


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_whole_system(compose):
    services = compose["services"]
    assert {"postgres", "redis", "server", "worker", "prometheus", "grafana"} == set(services)
    # docker-compose 1.29 (Debian's) refuses a top-level "name"; -p names the project.
    assert set(compose) <= {"services", "volumes", "x-sauci-env"}
    assert 2 == services["worker"]["deploy"]["replicas"]
    assert ["${SAUCI_PORT:-8000}:8000"] == services["server"]["ports"]


def test_compose_commands_parse_and_point_at_the_services(compose):
    services = compose["services"]
    for name in ("server", "worker"):
        args = parser().parse_args(services[name]["command"])
        assert ("serve" if name == "server" else "worker") == args.command
        env = services[name]["environment"]
        check_variables(env)
        assert env["SAUCI_BROKER"].startswith("redis://redis:6379/")
        assert "@postgres:5432/" in env["SAUCI_STORE"]
        assert "/var/lib/sauci-shared/artifacts" == env["SAUCI_ARTIFACTS_DIR"]
        assert any(v.startswith("shared:") for v in services[name]["volumes"])
    assert "8000" == str(parser().parse_args(services["server"]["command"]).port)


@pytest.fixture(scope="module")
def manifests():
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def container(manifests, name):
    return manifests[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]


def test_kubernetes_has_the_server_service_workers_and_secret(manifests):
    assert {
        ("Deployment", "sauci-server"),
        ("Deployment", "sauci-worker"),
        ("Service", "sauci"),
        ("Secret", "sauci"),
        ("PersistentVolumeClaim", "sauci-shared"),
    } == set(manifests)
    assert 1 == manifests[("Deployment", "sauci-server")]["spec"]["replicas"]
    assert manifests[("Deployment", "sauci-worker")]["spec"]["replicas"] >= 2


def test_kubernetes_commands_ports_and_secret_keys_agree(manifests):
    secret_keys = set(manifests[("Secret", "sauci")]["stringData"])
    for name, command in (("sauci-server", "serve"), ("sauci-worker", "worker")):
        spec = container(manifests, name)
        assert command == parser().parse_args(spec["args"]).command
        names = [e["name"] for e in spec["env"]]
        check_variables(names)
        assert {"SAUCI_STORE", "SAUCI_BROKER"} <= set(names)
        for entry in spec["env"]:
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ("sauci", True) == (ref["name"], ref["key"] in secret_keys)
    server = container(manifests, "sauci-server")
    service = manifests[("Service", "sauci")]["spec"]
    (port,) = server["ports"]
    assert port["name"] == service["ports"][0]["targetPort"]
    assert port["containerPort"] == parser().parse_args(server["args"]).port
    selector = service["selector"]
    labels = manifests[("Deployment", "sauci-server")]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_the_documented_commands_parse():
    for line in (DEPLOY.parent / "docs" / "deploy.md").read_text().splitlines():
        line = line.strip()
        if line.startswith("sauci worker ") or line.startswith("sauci serve "):
            words = shlex.split(line.split("#", 1)[0])
            parser().parse_args(words[1:])


def test_probes_ask_the_http_endpoints_on_the_ports_that_serve_them(manifests, compose):
    """Readiness is /readyz and liveness /healthz (never a bare TCP check), on the
    server's web port and on each worker's metrics port, which its args open."""
    for name in ("sauci-server", "sauci-worker"):
        spec = container(manifests, name)
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        assert "/readyz" == spec["readinessProbe"]["httpGet"]["path"]
        assert "/healthz" == spec["livenessProbe"]["httpGet"]["path"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert spec[probe]["httpGet"]["port"] in ports
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    worker = container(manifests, "sauci-worker")
    args = parser().parse_args(worker["args"])
    assert (9464, "0.0.0.0") == (args.metrics_port, args.metrics_host)
    assert {"metrics": 9464} == {p["name"]: p["containerPort"] for p in worker["ports"]}
    services = compose["services"]
    for service, port in (("server", 8000), ("worker", 9464)):
        check = " ".join(services[service]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in check
    assert "service_healthy" == services["worker"]["depends_on"]["server"]["condition"]


# -- the image, its context, and what runs as whom -------------------------------------


def test_the_image_runs_as_its_own_user_on_a_pinned_base():
    text = (DEPLOY / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG BASE=(\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert "FROM ${BASE}" in text
    (user,) = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert not user.startswith(("0", "root"))
    assert "EXPOSE 8000 9464" in text


def test_the_build_context_is_only_what_the_image_copies():
    rules = [
        line
        for line in (DEPLOY.parent / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert "*" == rules[0]  # everything out, then the allowlist
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = set(re.findall(r"^COPY (.+) \./", (DEPLOY / "Dockerfile").read_text(), re.M))
    assert {w for line in copied for w in line.split()} == allowed


def test_kubernetes_pods_run_as_non_root_with_a_read_only_root(manifests):
    for name in ("sauci-server", "sauci-worker"):
        pod = manifests[("Deployment", name)]["spec"]["template"]["spec"]
        spec = container(manifests, name)
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0
        assert ctx["readOnlyRootFilesystem"] is True
        assert ["ALL"] == ctx["capabilities"]["drop"]
        assert pod["securityContext"]["fsGroup"] == ctx["runAsGroup"]
        assert "memory" in spec["resources"]["limits"]
        # Everything SauCI writes is a volume: its data dir, artifacts, /tmp.
        mounts = {m["mountPath"] for m in spec["volumeMounts"]}
        assert {"/var/lib/sauci", "/var/lib/sauci-shared", "/tmp"} == mounts


@pytest.fixture
def compose_command() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is not installed (apt-get install docker-compose)"
        if os.environ.get("SAUCI_REQUIRE_COMPOSE"):
            pytest.fail(f"{message}, and SAUCI_REQUIRE_COMPOSE is set")
        pytest.skip(message)
    return found


def test_docker_compose_accepts_the_file(compose_command):
    """Debian's docker-compose 1.29 validates it (Compose v2 reads a superset)."""
    result = subprocess.run(
        [compose_command, "-p", "sauci", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        env={**os.environ, "SAUCI_ADMIN_PASSWORD": "x", "SAUCI_METRICS_TOKEN": "t"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == result.returncode, result.stderr


def test_prometheus_scrapes_the_jobs_the_alerts_read(tmp_path):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {c["job_name"] for c in config["scrape_configs"]}
    alerts = (DEPLOY.parent / "docs" / "grafana" / "alerts.yml").read_text()
    assert set(re.findall(r'job="([^"]+)"', alerts)) <= jobs
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("SAUCI_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is not installed, and SAUCI_REQUIRE_PROMTOOL is set")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    # The paths the compose file mounts, pointed at this tree.
    (tmp_path / "token").write_text("t")
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    text = text.replace(
        "/etc/prometheus/sauci-alerts.yml", str(DEPLOY.parent / "docs/grafana/alerts.yml")
    )
    text = text.replace("/prometheus/token", str(tmp_path / "token"))
    (tmp_path / "prometheus.yml").write_text(text)
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == result.returncode, result.stdout + result.stderr


def test_grafana_gets_the_dashboard_bound_to_the_stacks_prometheus(compose):
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (datasource,) = source["datasources"]
    entry = " ".join(compose["services"]["grafana"]["entrypoint"])
    assert f"s/$${{DS_PROMETHEUS}}/{datasource['uid']}/g" in entry
    dashboard = (DEPLOY.parent / "docs" / "grafana" / "sauci-dashboard.json").read_text()
    assert "${DS_PROMETHEUS}" in dashboard
