"""`pynet bench`: the verification that makes a figure a figure, the JSON
shape, and a short run of a few items against the kernel in namespaces.
Nothing here asserts a speed."""
import json
import os
import subprocess
import sys

import pytest

from pynet import benchmark
from pynet.benchmark import PATTERN_LEN, DataError, Source, Verifier

KEYS = {"item", "what", "unit", "value", "kernel", "kernel_value", "ratio", "cpu_s_per_gb",
        "seconds", "nbytes", "verified", "status", "reason", "extra"}


def stream(seed, n, chunk=65536):
    src = Source(seed)
    out = bytearray()
    while len(out) < n:
        c = src.chunk(min(chunk, n - len(out)))
        out += c
        src.advance(len(c))
    return bytes(out)


def test_verifier_accepts_the_stream_in_any_chunking():
    data = stream(7, 3 * PATTERN_LEN + 99)
    v = Verifier(7)
    pos = 0
    for size in [1, 1448, 65536, PATTERN_LEN + 5, 2 * PATTERN_LEN] * 3:
        v.feed(data[pos:pos + size])
        pos += size
    v.feed(data[pos:])
    assert v.nbytes == len(data)


@pytest.mark.parametrize("damage", ["lost", "flipped", "swapped", "duplicated"])
def test_verifier_rejects_damaged_streams(damage):
    data = bytearray(stream(3, 10 * 1448))
    seg = lambda i: slice(i * 1448, (i + 1) * 1448)   # noqa: E731
    if damage == "lost":
        del data[seg(4)]
    elif damage == "flipped":
        data[5000] ^= 1
    elif damage == "swapped":
        a, b = bytes(data[seg(2)]), bytes(data[seg(3)])
        data[seg(2)], data[seg(3)] = b, a
    else:
        data[seg(5)] = data[seg(4)]
    with pytest.raises(DataError):
        Verifier(3).feed(bytes(data))


def test_pipe_item_json_shape():
    """Unprivileged: two pynet stacks over the pipe, a verified figure."""
    res = benchmark.run(0.3, ["pipe-offload"])
    doc = benchmark.to_json(res, 0.3)
    assert doc["congestion_control"] == "cubic"
    (r,) = json.loads(json.dumps(doc))["results"]
    assert set(r) == KEYS
    assert r["status"] == "ok" and r["verified"] and r["unit"] == "Gbit/s"
    assert r["nbytes"] > 0 and r["value"] > 0 and r["cpu_s_per_gb"] > 0
    # the kernel baseline was not part of this run: no ratio is invented
    assert r["kernel"] == "kernel-veth" and r["ratio"] is None


@pytest.mark.priv
def test_bench_quick_json_against_the_kernel():
    items = ["kernel-veth", "kernel-veth-big", "tap-tx-offload", "tap-rx-offload",
             "packet-rx-offload", "rr-kernel", "rr-pynet", "crr-kernel", "crr-pynet", "mem-idle"]
    out = subprocess.run([sys.executable, "-m", "pynet", "bench", "--seconds", "0.5",
                          "--connections", "200", "--json", "-", "--only", *items],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    res = {r["item"]: r for r in doc["results"]}
    assert sorted(res) == sorted(items)
    for r in res.values():
        assert set(r) == KEYS
        assert r["status"] == "ok", r["reason"]
        assert r["verified"] is True and r["value"] > 0
    # pynet's BIG TCP sends against the kernel's, the rest against its defaults
    for name, kernel in (("tap-tx-offload", "kernel-veth-big"), ("tap-rx-offload", "kernel-veth"),
                         ("packet-rx-offload", "kernel-veth")):
        r, k = res[name], res[kernel]["value"]
        assert r["nbytes"] > 0 and r["kernel"] == kernel and r["kernel_value"] == k
        assert r["ratio"] == pytest.approx(r["value"] / k)
    assert res["rr-pynet"]["ratio"] == pytest.approx(
        res["rr-pynet"]["value"] / res["rr-kernel"]["value"])
    assert res["rr-pynet"]["extra"]["transactions"] > 0
    crr = res["crr-pynet"]
    assert crr["kernel_value"] == res["crr-kernel"]["value"]
    assert crr["extra"]["served"] == crr["extra"]["connections"] > 0
    mem = res["mem-idle"]
    assert mem["unit"] == "B/socket" and mem["extra"]["sockets"] == 2 * 199


def test_bench_loss_items_compare_with_the_kernel_under_the_same_loss():
    """The 1 % loss items: iptables rules in the namespaces for both stacks (this kernel
    has no netem), pynet's figure as a ratio to the kernel's under that loss."""
    items = ["kernel-veth-loss", "tap-tx-offload-loss"]
    out = subprocess.run([sys.executable, "-m", "pynet", "bench", "--seconds", "2",
                          "--json", "-", "--only", *items],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    res = {r["item"]: r for r in json.loads(out.stdout)["results"]}
    for r in res.values():
        assert r["status"] == "ok" and r["verified"] and r["value"] > 0, r["reason"]
    lossy = res["tap-tx-offload-loss"]
    assert lossy["kernel_value"] == res["kernel-veth-loss"]["value"]
    assert lossy["ratio"] == pytest.approx(lossy["value"] / lossy["kernel_value"])


def test_unknown_item_is_refused():
    with pytest.raises(ValueError):
        benchmark.run(0.1, ["no-such-item"])


def test_cli_names_unknown_items_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        benchmark.main(["--only", "pipe,no-such-item", "rr-kernel"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown items: no-such-item" in err and "Traceback" not in err


def test_cli_takes_items_separated_by_commas(monkeypatch, capsys):
    seen = {}

    def run(seconds, only, nconn, progress):
        seen["only"] = only
        return []

    monkeypatch.setattr(benchmark, "run", run)
    assert benchmark.main(["--only", "pipe,pipe-offload", "mem-idle", "--json", "-"]) == 0
    assert seen["only"] == ["pipe", "pipe-offload", "mem-idle"]


def test_report_table_from_json_runs(tmp_path, capsys):
    """--report turns --json outputs into the README's table: every run's figure with
    its ratio, a failed item by its status, and the last run's CPU per GB."""
    def run(veth, tx, tx_status="ok"):
        return {"results": [
            {"item": "kernel-veth", "what": "kernel", "unit": "Gbit/s", "value": veth, "ratio": None,
             "status": "ok", "cpu_s_per_gb": 0.2},
            {"item": "tap-tx", "what": "pynet", "unit": "Gbit/s" if tx_status == "ok" else "",
             "value": tx,
             "ratio": tx / veth if tx_status == "ok" else None, "status": tx_status,
             "cpu_s_per_gb": 1.5 if tx_status == "ok" else None}]}
    paths = []
    for i, r in enumerate((run(20.0, 5.0), run(10.0, 1.0, "error"))):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(r))
    assert benchmark.main(["--report", *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| item | what | unit | run 1 | run 2 | CPU s/GB (run 2) |"
    assert lines[2] == "| `kernel-veth` | kernel | Gbit/s | 20.00 | 10.00 | 0.20 |"
    assert lines[3] == "| `tap-tx` | pynet | Gbit/s | 5.00 (0.25×) | error | - |"


def test_rate_items_run_on_one_cpu_and_give_the_others_back():
    """RR and CRR items pin themselves and what they start to one CPU, then restore."""
    before = os.sched_getaffinity(0)
    inside = benchmark._on_one_cpu(lambda: os.sched_getaffinity(0))()
    assert len(inside) == 1 and inside <= before
    assert os.sched_getaffinity(0) == before
    pinned = [name for name, what, _, _ in benchmark._items(1.0, 10) if "one CPU" in what]
    assert pinned == ["rr-kernel", "rr-pynet", "rr-socket", "crr-kernel", "crr-pynet"]
