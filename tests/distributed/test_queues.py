"""Queue naming: a build's label set names one queue; a worker listens on every subset."""

from __future__ import annotations

import pytest

from sauci.distributed import queue_name, worker_queues
from sauci.exceptions import ConfigError


def test_no_labels_is_the_base_queue():
    assert "sauci" == queue_name(())


def test_labels_are_sorted_and_unique_in_the_name():
    assert "sauci.docker+linux" == queue_name(["linux", "docker", "linux"])


def test_a_worker_listens_on_every_subset_of_its_labels():
    expected = ["sauci", "sauci.docker", "sauci.linux", "sauci.docker+linux"]
    assert expected == worker_queues(["linux", "docker"])


def test_a_build_queue_is_among_the_queues_of_every_worker_that_has_its_labels():
    build = queue_name(["gpu", "linux"])
    assert build in worker_queues(["linux", "gpu", "docker"])
    assert build not in worker_queues(["linux", "docker"])


def test_more_than_eight_labels_is_a_clear_error():
    with pytest.raises(ConfigError, match="at most 8"):
        worker_queues([f"l{i}" for i in range(9)])


def test_a_label_that_cannot_name_a_queue_is_refused():
    with pytest.raises(ConfigError, match="not 1 to 64 letters"):
        worker_queues(["has space"])


def test_a_queue_name_fits_amqp_s_255_bytes_with_eight_long_labels():
    labels = [c * 64 for c in "abcdefgh"]
    name = queue_name(labels)
    assert len(name.encode()) <= 255
    assert name in worker_queues(labels)
    assert name != queue_name([*labels[:7], "i" * 64])
    assert "sauci.a+b" == queue_name(["b", "a"])  # short names stay readable
