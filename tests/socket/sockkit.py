"""Test kit for the socket API: two pynet stacks joined by the in-memory
pipe, driven by one runner thread (the pipe hands frames straight to its
peer, so both stacks share the runner and its lock)."""
import contextlib
import os

from pynet.runner import Runner
from pynet.stack import pipe_stacks

A, B = "198.18.0.1", "198.18.0.2"


@contextlib.contextmanager
def two_stacks():
    """(stack_a at A, stack_b at B), running; everything stopped on exit."""
    a, b = pipe_stacks((A, B))
    runner = Runner(a, b).start()
    try:
        yield a, b
    finally:
        runner.stop()
        for stack in (a, b):
            for dev in stack.devices.values():
                dev.stop()


def open_fds():
    """How many socket descriptors this process holds."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:       # listdir's own descriptor, gone already
            pass
    return n
