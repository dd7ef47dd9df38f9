"""The Kubernetes Job a launcher would create for one build (docs/kubernetes.md).

Built with the official ``kubernetes`` client's models, so that what the
launcher would send is what the API's types allow; no API server is called
here. Install with ``pip install 'sauci[kubernetes]'``.
"""

from __future__ import annotations

import re
from typing import Any

from sauci.core.resources import Resources
from sauci.exceptions import ConfigError

__all__ = ["job_for_build", "job_manifest"]

_UID = 10001  # the worker image's unprivileged user
_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def _client() -> Any:
    try:
        from kubernetes import client
    except ImportError as exc:  # an optional dependency: say how to get it
        raise ConfigError(
            "the Kubernetes launcher needs the kubernetes client: pip install 'sauci[kubernetes]'"
        ) from exc
    return client


def _label(value: str) -> str:
    """A label value (at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    return _LABEL.sub("-", value)[-63:].strip("-_.") or "none"


def job_for_build(
    build_id: int,
    repo: str,
    cost: Resources,
    *,
    image: str,
    namespace: str = "sauci",
    store_secret: str = "sauci-store",
    ttl_after_finished: int = 600,
) -> Any:
    """A ``V1Job`` that runs one ``sauci worker`` for build ``build_id``;
    ``store_secret`` names the Secret holding SAUCI_STORE and SAUCI_BROKER.

    The pod asks for and is limited to the build's declared ``cost`` (so the
    cluster places it by the same numbers as SauCI), runs as a non-root
    user with no privilege escalation, every capability dropped, a read-only
    root filesystem and the runtime's default seccomp profile, never
    restarts (SauCI retries a lost build itself), and is removed
    ``ttl_after_finished`` seconds after it ends.
    """
    client = _client()
    amount = {"cpu": f"{round(cost.cpus * 1000)}m", "memory": str(cost.memory)}
    labels = {
        "app.kubernetes.io/name": "sauci-worker",
        "app.kubernetes.io/managed-by": "sauci",
        "sauci.dev/build": str(build_id),
        "sauci.dev/repo": _label(repo),
    }
    container = client.V1Container(
        name="worker",
        image=image,
        # Flags `sauci worker` has today; a worker that exits when idle is
        # item 3 of the issue and not built (docs/kubernetes.md).
        args=["worker", "--slots", "1", "--name", f"k8s-build-{build_id}"],
        env_from=[client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=store_secret))],
        resources=client.V1ResourceRequirements(requests=amount, limits=amount),
        security_context=client.V1SecurityContext(
            run_as_non_root=True,
            run_as_user=_UID,
            run_as_group=_UID,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volume_mounts=[client.V1VolumeMount(name="work", mount_path="/var/lib/sauci")],
    )
    pod = client.V1PodSpec(
        containers=[container],
        restart_policy="Never",
        automount_service_account_token=False,
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=_UID, fs_group=_UID
        ),
        volumes=[client.V1Volume(name="work", empty_dir=client.V1EmptyDirVolumeSource())],
    )
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=f"sauci-build-{build_id}", namespace=namespace, labels=labels
        ),
        spec=client.V1JobSpec(
            backoff_limit=0,
            ttl_seconds_after_finished=ttl_after_finished,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels), spec=pod
            ),
        ),
    )


def job_manifest(job: Any) -> dict[str, Any]:
    """The JSON-ready manifest the client would send for ``job``."""
    result: dict[str, Any] = _client().ApiClient().sanitize_for_serialization(job)
    return result
