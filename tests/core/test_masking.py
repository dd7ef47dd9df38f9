"""Secrets are masked in everything a LogSink passes on, however the output is
cut into writes: the file, the store's chunks, and what live viewers see."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sauci.core.logsink import MASK, MIN_SECRET_LENGTH, LogSink


class ChunkStore:
    """A store that keeps the chunks it is sent."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def append_log(self, build_id: int | None, step: str | None, data: bytes) -> int:
        self.chunks.append(data)
        return sum(map(len, self.chunks))


def reference(data: bytes, secrets: list[bytes]) -> bytes:
    """The whole log masked at once, the slow obvious way: left to right, the
    longest secret starting at each byte is replaced by the mask; an end that
    begins a secret (MIN_SECRET_LENGTH bytes of it or more) is masked too."""
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    out = bytearray()
    i = 0
    while i < len(data):
        hit = next((s for s in values if data.startswith(s, i)), None)
        if hit is not None:
            out += MASK
            i += len(hit)
            continue
        rest = data[i:]
        if len(rest) >= MIN_SECRET_LENGTH and any(
            len(s) > len(rest) and s.startswith(rest) for s in values
        ):
            out += MASK
            break
        out.append(data[i])
        i += 1
    return bytes(out)


def write_in_pieces(path: Path, data: bytes, secrets: list[bytes], cuts: list[int]):
    """Write ``data`` cut at ``cuts``; returns (file, store chunks, what a viewer saw)."""
    store = ChunkStore()
    seen: list[bytes] = []
    with LogSink(path, store=store, secrets=secrets, on_data=seen.append, flush_interval=0) as sink:
        for start, end in itertools.pairwise(sorted({0, len(data), *cuts})):
            sink.write(data[start:end])
    return path.read_bytes(), b"".join(store.chunks), b"".join(seen)


# A small alphabet without the mask's "*", so that secrets occur often,
# overlap, share beginnings, and get split; and so that a secret found in the
# output can only be one that was missed (never one the mask helped make).
_byte = st.sampled_from([b"a", b"b", b"c", b"\n", b"\xff"])
_secret = st.lists(_byte, min_size=MIN_SECRET_LENGTH, max_size=40).map(b"".join)


@st.composite
def related_secrets(draw: st.DrawFn) -> list[bytes]:
    """Several secrets, some the beginning or the end of another, or sharing one."""
    first = draw(_secret)
    secrets = [first]
    for _ in range(draw(st.integers(0, 4))):
        base = draw(st.sampled_from(secrets))
        kind = draw(st.sampled_from(["prefix", "extend", "share", "fresh"]))
        cut = draw(st.integers(MIN_SECRET_LENGTH, max(MIN_SECRET_LENGTH, len(base))))
        if kind == "prefix":
            secrets.append(base[:cut])
        elif kind == "extend":
            secrets.append(base + draw(_secret))
        elif kind == "share":
            secrets.append(base[: cut - 1] + draw(_secret))
        else:
            secrets.append(draw(_secret))
    return secrets


@st.composite
def logs(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[int]]:
    """A log of secrets (whole and cut short) and filler, its secrets, and where
    it is cut into writes: often in the middle of a secret, at times in
    pieces far shorter than a secret."""
    secrets = draw(related_secrets())
    filler = st.lists(_byte, max_size=12).map(b"".join)
    piece = st.one_of(
        filler,
        st.sampled_from(secrets),
        st.sampled_from(secrets).flatmap(lambda s: st.integers(1, len(s)).map(lambda n: s[:n])),
    )
    data = b"".join(draw(st.lists(piece, max_size=30)))
    if draw(st.booleans()):  # tiny writes: a secret spread over many
        step = draw(st.integers(1, 4))
        cuts = list(range(0, len(data), step))
    else:
        cuts = draw(st.lists(st.integers(0, len(data)), max_size=40))
    return data, secrets, cuts


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=logs())
@example(case=(b"x" + b"abcdefgh" * 3 + b"y", [b"abcdefgh" * 3], list(range(0, 30, 2))))
@example(case=(b"aaab aaa", [b"aaa", b"aaab"], [3, 4]))
@example(case=(b"run ab", [b"abcdef", b"bcd"], [5]))  # ends in a secret's beginning
# The secret's first 8 bytes repeat in the output: the second place they start is the one.
@example(case=(b"x" + b"a" * 9 + b"b" + b"a" * 10 + b"\n", [b"a" * 8 + b"b" + b"a" * 10], [14]))
def test_secrets_never_reach_the_file_the_store_or_a_viewer(
    tmp_path: Path, case: tuple[bytes, list[bytes], list[int]]
) -> None:
    """However the output is cut, the file, the store's chunks and the live
    viewer get the same bytes: the log masked as a whole (so the text around
    the secrets is intact), and no secret in them."""
    data, secrets, cuts = case
    on_disk, stored, seen = write_in_pieces(
        tmp_path / f"prop-{time.monotonic_ns()}.log", data, secrets, cuts
    )
    expected = reference(data, secrets)
    assert expected == on_disk
    assert expected == stored
    assert expected == seen
    assert [] == [s for s in secrets if s in on_disk]


@settings(max_examples=200, deadline=None)
@given(secrets=related_secrets(), text=st.lists(_byte, max_size=200).map(b"".join))
def test_text_without_secrets_passes_unchanged(secrets: list[bytes], text: bytes) -> None:
    """Output that holds no secret (nor ends in the beginning of one) is kept
    byte for byte, whatever the secrets look like."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        on_disk, stored, seen = write_in_pieces(
            Path(tmp) / "step.log", text, secrets, list(range(0, len(text), 7))
        )
    if reference(text, secrets) == text:  # no secret, no cut-off beginning of one
        assert text == on_disk == stored == seen


def test_a_secret_longer_than_a_read_is_masked(tmp_path: Path) -> None:
    """A 200 KiB secret arriving in 64 KiB reads (the sandboxes' read size)."""
    secret = bytes(range(256)).replace(b"*", b"-") * 800
    data = b"key: " + secret + b"\ndone\n"
    on_disk, stored, seen = write_in_pieces(
        tmp_path / "step.log", data, [secret], list(range(0, len(data), 65536))
    )
    assert b"key: ***\ndone\n" == on_disk == stored == seen


def test_the_live_view_is_not_held_back_without_a_secret_beginning(tmp_path: Path) -> None:
    """Only an end that may begin a secret waits for the next write: a prompt
    or a progress line reaches the viewer at once."""
    seen: list[bytes] = []
    with LogSink(tmp_path / "step.log", secrets=["hunter2"], on_data=seen.append) as sink:
        sink.write(b"Password: ")
        assert b"Password: " == b"".join(seen)
        sink.write(b"hunt")
        assert b"Password: " == b"".join(seen)  # may be the secret: held
        sink.write(b"ing season\n")
        assert b"Password: hunting season\n" == b"".join(seen)
