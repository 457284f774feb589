"""pynet: a user-space TCP/IP stack for Python whose hot path is C."""
try:
    from pynet import _core  # noqa: F401
except ImportError as exc:  # no silent pure-Python fallback: say how to build it
    raise ImportError(
        "pynet's compiled core (pynet._core) is missing or failed to load: "
        f"{exc}. Install pynet with `pip install .` (or `pip install -e .`) "
        "so that the C extension is built."
    ) from exc

__version__ = "0.1.0"


def __getattr__(name):
    # pynet.Stack without importing the whole IPv4 layer for `import pynet`.
    if name == "Stack":
        from pynet.stack import Stack
        return Stack
    if name in ("create_connection", "create_server", "patch"):
        from pynet import socket
        return getattr(socket, name)
    raise AttributeError(f"module 'pynet' has no attribute {name!r}")
