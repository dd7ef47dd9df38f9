"""Secrets the server grants (its --secrets-file for this repository, its
SAUCI_SECRET_* variables) reach the step that names them, and are masked
in everything stored."""

from __future__ import annotations

import hashlib

from security_helpers import holders

from sauci.core.logsink import MASK
from sauci.core.models import Status


def test_a_granted_secret_reaches_the_step_and_is_masked_in_its_log(namespace_target):
    target = namespace_target
    token, shared = target.granted["TOKEN"], target.granted["SHARED"]
    pipeline = (
        "steps:\n"
        "  deploy:\n"
        "    secrets: [TOKEN, SHARED]\n"
        "    run: |\n"
        '      echo "token=$TOKEN shared=$SHARED"\n'
        '      printf %s "$TOKEN" | sha256sum\n'
        '      printf %s "$SHARED" | sha256sum\n'
        "  unnamed:\n"
        '    run: echo "token=[$TOKEN] shared=[$SHARED]"\n'
    )
    sha = target.origin.commit(pipeline, message="use the secrets")
    target.origin.push("refs/heads/secrets")
    build = target.served.build_of(sha, "refs/heads/secrets")

    logs = target.served.logs(build)
    assert Status.PASSED == build.status, logs
    # The step had the values: their digests, which are not masked, say so.
    assert hashlib.sha256(token.encode()).hexdigest().encode() in logs["deploy"]
    assert hashlib.sha256(shared.encode()).hexdigest().encode() in logs["deploy"]
    assert b"token=" + MASK + b" shared=" + MASK + b"\n" in logs["deploy"]
    # A step that does not name them does not get them.
    assert b"token=[] shared=[]\n" in logs["unnamed"]
    assert [] == holders([token, shared], target.data)
