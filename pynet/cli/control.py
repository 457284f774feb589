"""The control socket of a running pynet command, and its client.

A command that runs a stack for a while (ping, serve, get, demo) listens on
a UNIX socket `ctl-PID.sock` in the run directory and answers one JSON
request per line, {"view": "ss"|"neigh"|"route"|"nstat"}, with one JSON
line: {"pid", "command", "data"} or {"error"}. `pynet ss` and the other
views are its clients. It is served from the thread that runs the stack,
between polls, so the tables are read while nothing changes them.
"""
import glob
import json
import os
import socket

from pynet.cli import views
from pynet.cli.topology import run_dir

VIEWS = {"ss": views.ss, "neigh": views.neigh, "route": views.route, "nstat": views.nstat}
MAX_REQUEST = 4096


def control_path(pid):
    return os.path.join(run_dir(), f"ctl-{pid}.sock")


class ControlServer:
    """Listens while in a `with`; call serve() from the stack's loop."""

    def __init__(self, stack, command):
        self.stack = stack
        self.command = command
        self.path = control_path(os.getpid())
        self.sock = None

    def __enter__(self):
        if os.path.exists(self.path):
            os.unlink(self.path)         # a previous process with our pid died without cleaning
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.setblocking(False)
        return self

    def __exit__(self, *exc):
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        return False

    def fileno(self):
        return self.sock.fileno()

    def serve_in_thread(self, lock):
        """For a stack driven by its runner thread: answer from a thread of
        our own, reading the tables under the runner's lock."""
        import selectors
        import threading

        def loop():
            try:
                with selectors.DefaultSelector() as sel:
                    sel.register(self.sock, selectors.EVENT_READ)
                    while self.sock.fileno() >= 0:
                        if sel.select(0.2):
                            with lock:
                                self.serve()
            except (OSError, ValueError):       # closed under us: the command is ending
                pass
        threading.Thread(target=loop, name="pynet-control", daemon=True).start()
        return self

    def serve(self):
        """Answer the requests waiting now; never blocks the stack for long.
        Returns False, so it can sit in a run_until predicate."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, OSError):     # OSError: closed while we looked
                return False
            with conn:
                conn.settimeout(0.5)
                try:
                    line = conn.makefile("rb").readline(MAX_REQUEST)
                    conn.sendall(json.dumps(self.answer(line)).encode() + b"\n")
                except OSError:
                    pass              # the client went away: nothing to answer

    def answer(self, line):
        try:
            req = json.loads(line)
            fn = VIEWS[req["view"]]
        except (ValueError, KeyError, TypeError):
            return {"error": f"bad request {line[:80]!r}; views: {sorted(VIEWS)}"}
        return {"pid": os.getpid(), "command": self.command, "data": fn(self.stack)}


def running():
    """PIDs of pynet commands with a live control socket (stale ones removed)."""
    pids = []
    for path in glob.glob(os.path.join(run_dir(), "ctl-*.sock")):
        pid = int(path.rsplit("-", 1)[1].split(".")[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os.unlink(path)
            continue
        except PermissionError:
            pass
        pids.append(pid)
    return sorted(pids)


def query(view, pid=None, timeout=5.0):
    """Ask a running pynet command for one view: its reply dict."""
    if pid is None:
        pids = running()
        if not pids:
            raise SystemExit("pynet: no running pynet stack (start one, e.g. `pynet serve` "
                             "or `pynet ping`)")
        if len(pids) > 1:
            raise SystemExit(f"pynet: several pynet stacks run (pids {pids}); choose with --pid")
        pid = pids[0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(control_path(pid))
        except (FileNotFoundError, ConnectionRefusedError):
            raise SystemExit(f"pynet: no pynet stack with pid {pid}") from None
        s.sendall(json.dumps({"view": view}).encode() + b"\n")
        reply = json.loads(s.makefile("rb").readline())
    if "error" in reply:
        raise SystemExit(f"pynet: {reply['error']}")
    return reply


def cmd_view(args):
    reply = query(args.command, args.pid)
    views.render(args.command, reply["data"], args.json)
    return 0


def add_parsers(sub):
    helps = {"ss": "TCP sockets with their TCP info (like ss -tin)",
             "neigh": "the ARP table (like ip neigh)", "route": "routes (like ip route)",
             "nstat": "SNMP and link counters (like nstat -a)"}
    for name, text in helps.items():
        p = sub.add_parser(name, help=text + " of a running pynet command")
        p.add_argument("--pid", type=int, help="which running pynet command (default: the only one)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_view)
