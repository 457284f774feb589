"""The pynet command against the Linux kernel in a namespace made by
`pynet netns up`: ping, trace connect, the views of a running command."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

from clikit import Topology, netns_names, pynet, pynet_bg

pytestmark = pytest.mark.priv

ORDER_DOWN = ["tcp_connect", "tcp_transmit_skb", "ip_queue_xmit", "ip_local_out", "dst_output",
              "ip_output", "ip_finish_output", "ip_finish_output2", "neigh_output",
              "dev_queue_xmit", "start_xmit"]
ORDER_UP = ["netif_receive_skb", "ip_rcv", "ip_local_deliver", "ip_local_deliver_finish",
            "tcp_v4_rcv", "tcp_rcv_state_process", "tcp_rcv_synsent_state_process"]


def in_order(seq, wanted):
    it = iter(seq)
    return all(any(x == w for x in it) for w in wanted)


@pytest.fixture(params=["tap", "veth"])
def topo(request, tmp_path):
    with Topology(tmp_path, veth=request.param == "veth") as t:
        yield t


def test_netns_up_records_and_down_removes(tmp_path):
    t = Topology(tmp_path, veth=True, cidr="198.19.3.0/24")
    with t:
        assert t.name in netns_names()
        state = json.loads((tmp_path / f"netns-{t.name}.json").read_text())
        assert state["kernel_addr"] == "198.19.3.1" and state["pynet_addr"] == "198.19.3.2"
        out = t.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
        assert "198.19.3.1/24" in out
        outer = state["outer_ifname"]
        assert os.path.exists(f"/sys/class/net/{outer}")
        again = pynet("netns", "up", t.name, run_dir=tmp_path, check=1)
        assert "exists" in again.stderr
        # the same link by hand: --packet with --addr, no gateway needed on-link
        p = pynet("ping", "--packet", outer, "--addr", "198.19.3.2/24", "-c", 1, "198.19.3.1",
                  run_dir=tmp_path, check=0)
        assert "1 received" in p.stdout
    assert t.name not in netns_names()
    assert not (tmp_path / f"netns-{t.name}.json").exists()
    assert not os.path.exists(f"/sys/class/net/{outer}")


def test_ping_like_iputils(topo, tmp_path):
    p = pynet("ping", "--netns", topo.name, "-c", 3, "-i", 0.2, topo.kernel_addr,
              run_dir=tmp_path, check=0)
    lines = p.stdout.splitlines()
    assert lines[0] == f"PING {topo.kernel_addr} ({topo.kernel_addr}) 56(84) bytes of data."
    replies = [l for l in lines if l.startswith("64 bytes from")]
    assert [int(re.search(r"icmp_seq=(\d+)", l).group(1)) for l in replies] == [1, 2, 3]
    assert all(re.search(r"ttl=64 time=[\d.]+ ms$", l) for l in replies)
    assert "3 packets transmitted, 3 received, 0% packet loss" in p.stdout
    assert re.search(r"rtt min/avg/max/mdev = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms", p.stdout)
    # the kernel saw the requests
    snmp = topo.run(["nstat", "-az", "IcmpInEchos"], capture_output=True, text=True).stdout
    assert re.search(r"IcmpInEchos\s+3\b", snmp)


def test_ping_nobody_exits_1_and_sizes_fragment(tmp_path):
    with Topology(tmp_path) as t:
        silent = t.kernel_addr.rsplit(".", 1)[0] + ".99"
        p = pynet("ping", "--netns", t.name, "-c", 2, "-i", 0.2, "-W", 1, "--json", silent,
                  run_dir=tmp_path, check=1)
        s = json.loads(p.stdout)
        assert s["transmitted"] == 2 and s["received"] == 0 and s["loss_percent"] == 100.0
        p = pynet("ping", "--netns", t.name, "-c", 2, "-i", 0.2, "-s", 3000, "--no-offload",
                  t.kernel_addr, run_dir=tmp_path, check=0)
        assert "3008 bytes from" in p.stdout and "2 received" in p.stdout


def kernel_listener(topo, port):
    code = ("import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('{topo.kernel_addr}',{port})); s.listen(); print('ready',flush=True);"
            "c,_=s.accept(); c.recv(1)")
    srv = topo.popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "ready"
    return srv


def test_trace_connect_lists_the_path_in_order(topo, tmp_path):
    srv = kernel_listener(topo, 8080)
    try:
        p = pynet("trace", "connect", "--netns", topo.name, f"{topo.kernel_addr}:8080", "--json",
                  run_dir=tmp_path, check=0)
    finally:
        srv.kill()
        srv.wait()
    d = json.loads(p.stdout)
    assert d["established"] and d["state"] == "ESTABLISHED"
    fns = [e["function"] for e in d["events"]]
    # a fresh stack: the SYN waits in neigh_output for the ARP exchange, then leaves
    assert in_order(fns, ORDER_DOWN[:-2] + ["neigh_resolve_output", "arp_solicit", "arp_rcv",
                                            "neigh_update:release"] + ORDER_DOWN[-2:]
                    + ORDER_UP + ["tcp_send_ack", "start_xmit"]), fns
    syn = [e for e in d["events"] if e["function"] == "start_xmit" and e["note"].endswith(" SYN")]
    assert len(syn) == 1 and syn[0]["tail"] - syn[0]["data"] >= 14 + 20 + 20
    for e in d["events"]:
        if e["head"] is not None:
            assert e["head"] <= e["data"] <= e["tail"] <= e["end"]
    # headroom shrinks on the way down: TCP, IPv4 and Ethernet headers pushed in front
    down = {e["function"]: e["data"] - e["head"] for e in d["events"][:len(ORDER_DOWN) + 4]
            if e["head"] is not None}
    assert down["ip_queue_xmit"] - down["ip_local_out"] == 20
    text = pynet("trace", "connect", "--netns", topo.name, f"{topo.kernel_addr}:8081",
                 run_dir=tmp_path, check=1).stdout
    assert "headroom" in text.splitlines()[0] and "not established: CLOSE" in text


def test_views_of_a_running_ping(topo, tmp_path):
    bg = pynet_bg("ping", "--netns", topo.name, "-c", 40, "-i", 0.1, topo.kernel_addr,
                  run_dir=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob("ctl-*.sock")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        neigh = json.loads(pynet("neigh", "--json", run_dir=tmp_path, check=0).stdout)
        assert [(n["dst"], n["state"]) for n in neigh] == [(topo.kernel_addr, "REACHABLE")]
        routes = pynet("route", run_dir=tmp_path, check=0).stdout.splitlines()
        assert any(r.startswith(f"default via {topo.kernel_addr} dev") for r in routes)
        assert any(r.startswith("198.18.7.0/24 dev") and f"src {topo.pynet_addr}" in r for r in routes)
        n1 = json.loads(pynet("nstat", "--json", run_dir=tmp_path, check=0).stdout)
        time.sleep(0.4)
        n2 = json.loads(pynet("nstat", "--json", run_dir=tmp_path, check=0).stdout)
        assert 0 < n1["IcmpOutEchos"] < n2["IcmpOutEchos"]
        assert n2["IcmpInEchoReps"] >= n1["IcmpInEchoReps"] > 0
        assert "IcmpOutEchos" in pynet("nstat", run_dir=tmp_path, check=0).stdout
        ss = pynet("ss", run_dir=tmp_path, check=0).stdout
        assert ss.split() == ["State", "Recv-Q", "Send-Q", "Local", "Address:Port", "Peer",
                              "Address:Port", "Info"]
    finally:
        bg.kill()
        bg.wait()
