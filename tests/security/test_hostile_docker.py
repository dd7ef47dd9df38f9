"""A server whose operator allows Docker: a pushed `sandbox: docker` step
(on a private dockerd, a local busybox image) reaches nothing of the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from security_helpers import (
    Target,
    assert_nothing_leaked,
    outside_base,
    reads_done,
    reads_pipeline,
    remove_tree,
    serve_target,
    server_paths,
)

from sauci.core.models import Status


@pytest.fixture(scope="module")
def docker_target(
    require_namespace: None,
    dockerd: str,
    busybox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    base = outside_base("sauci-security-docker-")
    target = None
    try:
        target = serve_target(
            tmp_path_factory.mktemp("docker"),
            base,
            args=("--allow-sandbox", "docker"),
            env={"DOCKER_HOST": dockerd},
        )
        yield target
    finally:
        if target is not None:
            target.served.stop()
        remove_tree(base)


def test_a_docker_step_reads_nothing_of_the_server(docker_target, busybox_image):
    target = docker_target
    extra = f"    sandbox: docker\n    image: {busybox_image}\n    shell: sh -c\n"
    pid = target.served.pid
    pipeline = reads_pipeline(server_paths(target), extra=extra) + (
        "  signals:\n" + extra + "    run: |\n"
        "      set +e\n"
        f"      kill -9 {pid} && echo KILLED-SERVER\n"
        "      kill -9 -1 && echo KILLED-ALL\n"
        "      echo STEP-RAN\n"
    )
    sha = target.origin.commit(pipeline, message="read the server from a container")
    target.origin.push("refs/heads/docker-reads")
    build = target.served.build_of(sha, "refs/heads/docker-reads", timeout=120)

    logs = target.served.logs(build)
    assert (Status.PASSED, None) == (build.status, build.reason), logs
    assert b"STEP-RAN" in logs["reads"]
    assert [] == reads_done(logs["reads"])
    assert b"named: [] [] [] []" in logs["reads"]
    kept = {p.name for p in (target.data / "artifacts").rglob("*") if p.is_file()}
    assert {"env.txt", "environ.txt", "ps.txt"} <= kept
    assert_nothing_leaked(target, build)
    assert b"STEP-RAN" in logs["signals"]
    assert b"KILLED-SERVER" not in logs["signals"]
    assert target.served.alive()
