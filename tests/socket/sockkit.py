"""Test kit for the socket API: two pynet stacks joined by the in-memory
pipe, driven by one runner thread (the pipe hands frames straight to its
peer, so both stacks share the runner and its lock)."""
import contextlib
import os
import secrets

from pynet.dev.pipe import pipe_pair
from pynet.runner import Runner
from pynet.stack import Stack

A, B = "198.18.0.1", "198.18.0.2"


@contextlib.contextmanager
def two_stacks():
    """(stack_a at A, stack_b at B), running; everything stopped on exit."""
    da, db = pipe_pair((f"pyns{secrets.token_hex(3)}", f"pyns{secrets.token_hex(3)}"))
    a, b = Stack(seed=1), Stack(seed=2)
    a.add_device(da)
    b.add_device(db)
    a.add_address(da, A + "/24")
    b.add_address(db, B + "/24")
    runner = Runner(a, b).start()
    try:
        yield a, b
    finally:
        runner.stop()
        da.stop()
        db.stop()


def open_fds():
    """How many socket descriptors this process holds."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:       # listdir's own descriptor, gone already
            pass
    return n
