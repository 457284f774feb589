"""Benchmarks: `python -m pytest bench --benchmark-enable`.

bench_*.py are collected (python_files in pyproject.toml); this lets them import the oracle from tests/, and after the
run prints the ratios issue 2 sets targets for (figures only; nothing here
asserts a duration).
"""
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))


def _median(benchmarks, name):
    for b in benchmarks:
        if b.name == name and b.stats:
            return b["median"]
    return None


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)   # pytest-benchmark's run state
    benchmarks = getattr(session, "benchmarks", None)
    if not benchmarks:
        return
    write = terminalreporter.write_line
    terminalreporter.section("pynet targets (issue 2)")
    for n in (1500, 65536):
        c = _median(benchmarks, f"test_csum_c[{n}]")
        memcpy = _median(benchmarks, f"test_memcpy[{n}]")
        py = _median(benchmarks, f"test_csum_oracle[{n}]")
        if c:
            write(f"checksum {n:>5} B: C {n / c / 1e9:6.2f} GB/s"
                  + (f", memcpy {n / memcpy / 1e9:6.2f} GB/s, C/memcpy {memcpy / c:5.2f} (target >= 0.5 at 64 KB)"
                     if memcpy else "")
                  + (f", C/oracle {py / c:8.0f}x (target >= 200x)" if py else ""))
    gso = _median(benchmarks, "test_gso_tcp_64k_c")
    gso_py = _median(benchmarks, "test_gso_tcp_64k_oracle")
    if gso:
        write(f"GSO 64 KB -> 1448 B segments: {gso * 1e6:.2f} us per super-segment (target < 10 us)"
              + (f", C/oracle {gso_py / gso:.0f}x" if gso_py else ""))
    skb = _median(benchmarks, "test_skb_alloc_reserve_push_pull")
    if skb:
        write(f"skb alloc/reserve/put/push/pull: {1 / skb / 1e6:.2f} M cycles/s")
