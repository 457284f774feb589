"""The pynet command without privilege: help, argument errors, views with no
stack running, and `pynet plot` of a lossy transfer between two pynet stacks."""
import json
import struct
import sys
from pathlib import Path

import pytest

from clikit import pynet

from pynet.dev.fault import FaultInjector
from pynet.dev.pcap import PcapWriter
from pynet.dev.pipe import pipe_pair
from pynet.stack import Stack

sys.path.insert(0, str(Path(__file__).parent.parent / "tcp"))
from test_tcp_stack import transfer  # noqa: E402  (the tcp room's two-stack transfer loop)

COMMANDS = ["demo", "netns", "ping", "trace", "ss", "neigh", "route", "nstat", "plot"]


def test_help_lists_every_command(tmp_path):
    p = pynet("--help", run_dir=tmp_path, check=0)
    for c in COMMANDS:
        assert f"    {c} " in p.stdout


def test_stack_command_without_a_link_says_what_to_give(tmp_path):
    p = pynet("ping", "198.18.0.1", run_dir=tmp_path, check=1)
    assert "--netns NAME" in p.stderr and "--tap IF" in p.stderr


def test_bad_arguments_exit_2_like_argparse(tmp_path):
    assert pynet("ping", run_dir=tmp_path).returncode == 2
    p = pynet("ping", "--drop", "1.5", "--netns", "x", "198.18.0.1", run_dir=tmp_path, check=2)
    assert "not a probability" in p.stderr
    p = pynet("ping", "--netns", "pynnotthere", "198.18.0.1", run_dir=tmp_path, check=1)
    assert "netns up pynnotthere" in p.stderr


@pytest.mark.parametrize("view", ["ss", "neigh", "route", "nstat"])
def test_views_without_a_running_stack(tmp_path, view):
    p = pynet(view, run_dir=tmp_path, check=1)
    assert "no running pynet stack" in p.stderr


def lossy_capture(path, nbytes=300_000, drop=0.03, seed=5):
    """a -> b over the pipe with frames dropped, recorded at a's end on the stack's clock."""
    da, db = pipe_pair(("pyncla", "pynclb"))
    a, b = Stack(seed=1), Stack(seed=2)
    da = FaultInjector(PcapWriter(da, str(path), clock=lambda: a.now), seed=seed, drop=drop)
    a.add_device(da)
    b.add_device(db)
    a.add_address(da, "198.18.0.1/24")
    b.add_address(db, "198.18.0.2/24")
    data, got, c, _ = transfer(a, b, nbytes)
    da.stop()
    db.stop()
    assert got == data
    return c.stats["RetransSegs"]


def test_plot_shows_retransmissions_of_a_lossy_transfer(tmp_path):
    pytest.importorskip("matplotlib")    # the `test` extra installs it: CI runs this
    cap = tmp_path / "lossy.pcap"
    retrans = lossy_capture(cap)
    assert retrans > 0
    png = tmp_path / "graph.png"
    p = pynet("plot", cap, "-o", png, "--json", run_dir=tmp_path, check=0)
    summary = json.loads(p.stdout)
    assert summary["connection"].startswith("198.18.0.1:") and summary["connection"].endswith(":80")
    assert summary["bytes"] == 300_000 + 1         # the data and the FIN
    assert summary["retransmissions"] > 0
    assert summary["sack_blocks"] > 0          # the receiver reports the holes (RFC 2018)
    assert summary["acks"] > 10
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1000, 600)
    p = pynet("plot", cap, run_dir=tmp_path, check=0)       # default output name, text summary
    assert "retransmissions" in p.stdout and (tmp_path / "lossy.png").exists()


def test_plot_rejects_what_is_not_a_capture(tmp_path):
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all, just some text")
    p = pynet("plot", bad, run_dir=tmp_path, check=1)
    assert "not a pcap file" in p.stderr
