"""PollFd's descriptor is readable and writable exactly when told to be."""
import select
import selectors

import pytest

from pynet.pollfd import PollFd


def ready(fd):
    r, w, _ = select.select([fd], [fd], [], 0)
    return (bool(r), bool(w))


@pytest.mark.parametrize("steps", [
    [(True, True), (False, True), (True, False), (False, False), (True, True)],
    [(False, False), (False, False), (True, False), (True, True), (False, True)],
])
def test_select_sees_every_state(steps):
    fd = PollFd()
    try:
        assert ready(fd) == (False, True)
        for state in steps:
            fd.set(*state)
            assert ready(fd) == state
    finally:
        fd.close()


def test_selectors_wake_on_readable():
    fd = PollFd()
    sel = selectors.DefaultSelector()
    try:
        sel.register(fd, selectors.EVENT_READ)
        assert sel.select(0) == []
        fd.set(True, True)
        assert [key.fileobj for key, _ in sel.select(0)] == [fd]
    finally:
        sel.close()
        fd.close()
