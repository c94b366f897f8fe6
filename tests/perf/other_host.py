"""Another machine, for tests that prove nothing reaches one: this machine's own address on its default route,
which is not a loopback address, so run_perf must treat it as a remote host (tests/perf/test_team_admin.py,
tests/perf/test_run_perf.py)."""

import socket

import pytest


def own_address() -> str:
    """This machine's address on its default route (not a loopback one), or skip where there is none."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))  # no packet is sent: connect() on UDP only picks the route
        address = probe.getsockname()[0]
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("this machine has no address but loopback ones: there is no other host to protect")
    return address
