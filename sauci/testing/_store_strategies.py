"""The Hypothesis strategies of the store state machine: requests, repositories,
update fields, test cases, workers and artifacts, over small alphabets so that
random operations collide (same repository, same step, same worker) often."""

from __future__ import annotations

from hypothesis import strategies as st

from sauci.core.models import Artifact, BuildRequest, Repo, Status, TestCase, Worker

ALPHABET = "abcé☃ /-_\n"
REPOS = ("a", "b", "acme/app")
REFS = ("", "refs/heads/main", "refs/heads/dev")
EVENTS = ("manual", "push", "cron")
STEPS = ("build", "test", "lint")
LABELS = ("linux", "gpu", "é")
WORKER_NAMES = ("a", "b", "Z", "é")

text = st.text(alphabet=ALPHABET, max_size=8)
opt_text = st.none() | text
times = st.none() | st.floats(min_value=0, max_value=2e9, allow_nan=False).map(
    lambda f: round(f, 3)
)
statuses = st.sampled_from(list(Status))
# Mostly queued, so that claims have something to choose from.
new_statuses = st.sampled_from([Status.QUEUED] * 6 + list(Status))
requests = st.builds(
    BuildRequest,
    repo=st.sampled_from(REPOS),
    ref=st.sampled_from(REFS),
    sha=st.sampled_from(("", "a" * 40, "b" * 40)),
    event=st.sampled_from(EVENTS),
    priority=st.integers(-3, 3),
    params=st.dictionaries(st.sampled_from(("X", "Y", "é")), text, max_size=2),
    author=st.sampled_from(("", "ada", "bob")),
    message=text,
    pusher=text,
    old_sha=st.sampled_from(("", "c" * 40)),
    reuse_from=st.none() | st.integers(1, 4),  # a model build id
    attempt=st.integers(1, 3),
)
repos = st.builds(
    Repo,
    id=st.sampled_from(("app", "lib", "é")),
    location=text,
    hook=st.sampled_from(("none", "receive", "commit")),
    poll_interval=st.none() | st.sampled_from((30.0, 60.5)),
    added_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
)
update_fields = st.fixed_dictionaries(
    {},
    optional={
        "status": statuses | statuses.map(lambda s: s.value),
        "reason": opt_text,
        "started_at": times,
        "finished_at": times,
        "claimed_by": opt_text,
        "sha": text,
        "ref": st.sampled_from(REFS),
        "author": st.sampled_from(("", "ada", "bob")),
        "message": text,
        "priority": st.integers(-3, 3),
        "cancel_requested": opt_text,
        "runs_on": st.lists(st.sampled_from(LABELS), max_size=2),
        "heartbeat_at": times,
        "bogus": text,
    },
)
test_cases = st.lists(
    st.builds(
        TestCase,
        name=text,
        classname=text,
        status=st.sampled_from(("passed", "failed", "errored", "skipped")),
        duration=st.floats(0, 1000, allow_nan=False).map(lambda f: round(f, 3)),
        message=text,
        text=text,
        file=text,
    ),
    max_size=3,
)
workers = st.builds(
    Worker,
    name=st.sampled_from(WORKER_NAMES),
    host=text,
    labels=st.lists(st.sampled_from(LABELS), max_size=3).map(tuple),
    slots=st.integers(1, 4),
    running=st.lists(st.integers(1, 9), max_size=3).map(tuple),
    started_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
    heartbeat_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
    state=st.sampled_from(("online", "stopping", "offline")),
    cpus=st.sampled_from((0.0, 0.5, 2.0)),
    memory=st.sampled_from((0, 2**30, 2**33)),
)
artifacts = st.lists(
    st.builds(Artifact, path=text, size=st.integers(0, 2**40), sha256=st.sampled_from(("", "ab"))),
    max_size=3,
)
