import sys
from pynet import benchmark as b
kind, off, direction = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
fn = b.bulk_pynet_tx if direction == "tx" else b.bulk_pynet_rx
r = fn(kind, off, float(sys.argv[4]))
print(direction, kind, off, f"{r.value:.2f} Gbit/s", r.extra)
