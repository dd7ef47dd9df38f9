"""What the server (root, outside any sandbox) reads on a pushed commit's
behalf: the pipeline file, artifacts and test reports. A symlink or an XML
entity must not make it read a file of its own for the pusher."""

from __future__ import annotations

import os

from security_helpers import git, holders, marker

from sauci.core.models import Status


def _commit_symlinked_pipeline(origin, target: str, message: str) -> str:
    pipeline = origin.work / ".sauci.yml"
    pipeline.unlink()
    os.symlink(target, pipeline)
    git(origin.work, "add", "-A")
    git(origin.work, "commit", "-q", "-m", message)
    sha = git(origin.work, "rev-parse", "HEAD").strip()
    # Later commits of the shared repository write a plain file again.
    pipeline.unlink()
    pipeline.write_text("steps:\n  hello:\n    run: echo hello\n")
    return sha


def test_a_pipeline_file_symlinked_out_of_the_workspace_is_not_read(namespace_target):
    target = namespace_target
    secret = marker("pipeline-file")
    # A private file of the server's that happens to be a valid pipeline.
    private = target.data / "private.yml"
    private.write_text(f"steps:\n  leak:\n    run: echo {secret}\n")
    private.chmod(0o600)
    sha = _commit_symlinked_pipeline(target.origin, str(private), "pipeline -> data dir")
    target.origin.push("refs/heads/symlinked-pipeline")
    build = target.served.build_of(sha, "refs/heads/symlinked-pipeline")
    ran = [s.name for s in target.served.store().list_steps(build.id) if s.started_at]

    assert [] == ran
    assert Status.ERRORED == build.status
    assert secret not in (build.reason or "")
    assert [] == holders([secret], target.data / "logs")


def test_a_pipeline_file_symlinked_to_the_servers_environment_leaks_nothing(namespace_target):
    target = namespace_target
    sha = _commit_symlinked_pipeline(target.origin, "/proc/self/environ", "pipeline -> environ")
    target.origin.push("refs/heads/environ-pipeline")
    build = target.served.build_of(sha, "refs/heads/environ-pipeline")

    assert Status.ERRORED == build.status
    assert [] == [value for value in target.leaks() if value in (build.reason or "")]
    assert [] == target.served.store().list_steps(build.id)


def _links_pipeline(target) -> str:
    return (
        "steps:\n"
        "  links:\n"
        "    run: |\n"
        f"      ln -s {target.marker_file} marker.txt\n"
        "      ln -s /etc/shadow shadow.txt\n"
        f"      ln -s {target.data} datadir\n"
        "      ln -s / root\n"
        f"      ln -s {target.marker_file} report.xml\n"
        "      echo STEP-RAN\n"
        "    artifacts: [marker.txt, shadow.txt, datadir, root/etc/shadow, '*.txt']\n"
        "    junit: ['report.xml', 'xxe.xml']\n"
    )


def _push_links(target, ref: str):
    xxe = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE r [<!ENTITY leak SYSTEM "file://{target.marker_file}">]>\n'
        '<testsuite name="s"><testcase classname="c" name="&leak;"/></testsuite>\n'
    )
    sha = target.origin.commit(_links_pipeline(target), files={"xxe.xml": xxe}, message="links")
    target.origin.push(ref)
    build = target.served.build_of(sha, ref)
    assert b"STEP-RAN" in target.served.logs(build)["links"]
    return build


def test_symlinked_artifacts_and_test_reports_leak_nothing(namespace_target):
    """A step links its artifacts and JUnit report to the server's files, and
    declares an external XML entity: nothing of those files is kept or parsed."""
    target = namespace_target
    build = _push_links(target, "refs/heads/links")

    cases = target.served.store().list_test_results(build.id)
    assert [] == [c for _, c in cases if target.file_marker in f"{c.name} {c.message}"]
    kept = [a.path for _, a in target.served.store().list_artifacts(build.id)]
    assert [] == [p for p in kept if p in ("marker.txt", "shadow.txt", "root/etc/shadow")]
    assert [] == holders(target.leaks(), target.data, skip=[target.marker_file])


def test_a_directory_symlink_artifact_is_not_walked(namespace_target):
    target = namespace_target
    build = _push_links(target, "refs/heads/dir-links")

    kept = [a.path for _, a in target.served.store().list_artifacts(build.id)]
    assert [] == [p for p in kept if p.startswith("datadir/")]


def test_what_a_step_leaves_cannot_make_the_server_fill_its_disk_or_spin(namespace_target):
    """A step makes a 1 TiB sparse file (nothing on its disk), a workspace 40
    directories deep, a report of a million test cases, and declares a glob
    whose ``**`` could stretch in more ways than the server could try. The
    server copies none of the sparse file, records at most MAX_CASES cases
    and ends the build."""
    from sauci.core.junit import MAX_CASES

    target = namespace_target
    deep = "/".join(["**", "a"] * 12 + ["b"])
    pipeline = (
        "steps:\n"
        "  leave:\n"
        "    run: |\n"
        "      mkdir -p out a; d=a; for i in $(seq 40); do d=$d/a; done; mkdir -p $d; touch $d/c\n"
        "      truncate -s 1T out/huge.bin; echo data > out/small.txt\n"
        "      python3 -c \"import sys; sys.stdout.write('<testsuite>' + '<testcase/>' * 1000000 + '</testsuite>')\" > r.xml\n"
        "      echo STEP-RAN\n"
        f"    artifacts: ['out/*', '{deep}']\n"
        f"    junit: ['r.xml', '{deep}']\n"
    )
    sha = target.origin.commit(pipeline, message="leave much")
    target.origin.push("refs/heads/leave")
    build = target.served.build_of(sha, "refs/heads/leave")
    assert b"STEP-RAN" in target.served.logs(build)["leave"]
    (step,) = target.served.store().list_steps(build.id)
    assert step.status is Status.PASSED
    assert "artifact limit: 1 file(s) not kept (out/huge.bin first)" in (step.reason or "")
    kept = [a.path for _, a in target.served.store().list_artifacts(build.id)]
    assert ["out/small.txt"] == kept
    assert MAX_CASES + 1 == len(target.served.store().list_test_results(build.id))
