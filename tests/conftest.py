"""Shared test set-up: privilege policy and leak checks.

Tests marked `priv` need root, /dev/net/tun and network namespaces. They skip
when those are missing, except under PYNET_REQUIRE_PRIV=1 (CI), where a
missing privilege is a failure: CI must run them, not skip them.
"""
import os

import pytest

import pynet._core  # noqa: F401  -- fail the whole run if the C core did not build
from pynet import netns

REQUIRE_PRIV = os.environ.get("PYNET_REQUIRE_PRIV") == "1"


def privilege_problem():
    """Why privileged tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if not os.path.isdir("/var/run/netns") and not os.access("/var/run", os.W_OK):
        return "cannot create network namespaces"
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("priv") is None:
        return
    problem = privilege_problem()
    if problem is None:
        return
    if REQUIRE_PRIV:
        pytest.fail(f"privileged test cannot run ({problem}) and PYNET_REQUIRE_PRIV=1", pytrace=False)
    pytest.skip(f"needs privilege: {problem}")


def _ours():
    """Namespaces, and links in the root namespace (a veth's outer end), this
    test process made through pynet.netns and has not removed.

    Only our own: other processes (a second test run) may hold pyn* ones.
    """
    return set(netns.live_namespaces()), set(netns.live_links())


@pytest.fixture(autouse=True)
def no_leaked_netns():
    """Every namespace and root-namespace link a test makes is gone when it ends, pass or fail."""
    ns_before, links_before = _ours()
    yield
    ns_after, links_after = _ours()
    assert not ns_after - ns_before, f"test left network namespaces behind: {sorted(ns_after - ns_before)}"
    assert not links_after - links_before, f"test left links behind: {sorted(links_after - links_before)}"
