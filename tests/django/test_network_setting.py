"""SAUCI["NETWORK"]: the site's network policy for `manage.py sauci_serve` / `sauci_worker`."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from sauci.contrib.django import conf


def test_network_false_turns_the_network_off(settings, store, monkeypatch):
    monkeypatch.delenv("SAUCI_NETWORK", raising=False)
    settings.SAUCI = {"STORE": store, "NETWORK": False}
    assert conf.sauci_settings().network is False


def test_unset_leaves_it_on(settings, store, monkeypatch):
    monkeypatch.delenv("SAUCI_NETWORK", raising=False)
    settings.SAUCI = {"STORE": store}
    assert conf.sauci_settings().network is True


def test_a_bad_value_is_refused(settings, store):
    settings.SAUCI = {"STORE": store, "NETWORK": "no"}
    with pytest.raises((ImproperlyConfigured, ValueError), match="NETWORK"):
        conf.sauci_settings()
