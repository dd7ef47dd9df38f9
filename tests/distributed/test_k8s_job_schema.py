"""The Job a Kubernetes launcher would create for a build, checked against the
Kubernetes API's own schema (kubernetes-validate's copy of the OpenAPI
definitions, strict: no unknown field). No API server runs here: this proves
the manifest is one the API accepts, not that a cluster runs it."""

from __future__ import annotations

import pytest

from sauci.core.resources import Resources

kubernetes_validate = pytest.importorskip("kubernetes_validate")
pytest.importorskip("kubernetes")

from sauci.contrib.k8s_job import job_for_build, job_manifest  # noqa: E402

GIB = 2**30


def _manifest(cost: Resources, repo: str = "/srv/git/app") -> dict:  # type: ignore[type-arg]
    return job_manifest(job_for_build(42, repo, cost, image="ghcr.io/example/sauci:1"))


@pytest.mark.parametrize(
    "cost", [Resources(cpus=0.5, memory=GIB // 2), Resources(cpus=8, memory=64 * GIB)]
)
def test_the_job_is_valid_against_the_kubernetes_schema(cost: Resources) -> None:
    manifest = _manifest(cost)
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)


def test_the_pod_asks_for_and_is_limited_to_the_declared_cost_as_a_non_root_user() -> None:
    manifest = _manifest(Resources(cpus=1.5, memory=3 * GIB))
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    amount = {"cpu": "1500m", "memory": str(3 * GIB)}
    assert {"requests": amount, "limits": amount} == container["resources"]
    security = container["securityContext"]
    assert (True, False, ["ALL"]) == (
        security["runAsNonRoot"],
        security["allowPrivilegeEscalation"],
        security["capabilities"]["drop"],
    )
    assert 0 != security["runAsUser"]
    assert ("Never", False, 0) == (
        pod["restartPolicy"],
        pod["automountServiceAccountToken"],
        manifest["spec"]["backoffLimit"],
    )
    assert "42" == manifest["metadata"]["labels"]["sauci.dev/build"]


def test_a_hostile_repository_path_still_makes_a_valid_label() -> None:
    manifest = _manifest(Resources(), repo="/x/" + "évil repo!$(id)" * 10 + "-")
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    value = manifest["metadata"]["labels"]["sauci.dev/repo"]
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()


def test_the_schema_check_refuses_a_field_the_api_does_not_have() -> None:
    manifest = _manifest(Resources())
    manifest["spec"]["template"]["spec"]["containers"][0]["cpuLimit"] = "2"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
