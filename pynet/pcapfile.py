"""The classic pcap file format (libpcap 2.4, microsecond timestamps), Ethernet only.

Format only, no device: PcapWriterFile writes frames to a file, read_pcap
yields them back. The dev room's PcapWriter device wrapper writes through it.

    with PcapWriterFile("out.pcap") as w:
        w.write(frame_bytes, ts=now)
    for ts, frame in read_pcap("out.pcap"):
        ...
"""
import struct
import time

LINKTYPE_ETHERNET = 1
PCAP_MAGIC = 0xA1B2C3D4           # microsecond timestamps
PCAP_MAGIC_NS = 0xA1B23C4D        # nanosecond timestamps (read only)
SNAPLEN = 262144

_GLOBAL = struct.Struct("IHHiIII")     # magic, major, minor, thiszone, sigfigs, snaplen, linktype
_RECORD = struct.Struct("IIII")        # ts_sec, ts_frac, incl_len, orig_len


class PcapError(ValueError):
    """Not a pcap file pynet can read (bad magic, link type, or a cut-off record)."""


class PcapWriterFile:
    """Writes frames to a pcap file: a path (opened, owned, closed) or a binary file object."""

    def __init__(self, fileobj_or_path, snaplen: int = SNAPLEN):
        if isinstance(fileobj_or_path, (str, bytes)) or hasattr(fileobj_or_path, "__fspath__"):
            self._f = open(fileobj_or_path, "wb")
            self._owned = True
        else:
            self._f = fileobj_or_path
            self._owned = False
        self.snaplen = snaplen
        self._f.write(_GLOBAL.pack(PCAP_MAGIC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, frame, ts=None) -> None:
        """Append one frame; ts in seconds (float), default the wall clock now."""
        if ts is None:
            ts = time.time()
        sec = int(ts)
        usec = min(int(round((ts - sec) * 1e6)), 999999)
        data = bytes(frame)
        incl = data[:self.snaplen]
        self._f.write(_RECORD.pack(sec, usec, len(incl), len(data)))
        self._f.write(incl)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._owned:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_pcap(path):
    """Yield (timestamp as float seconds, frame bytes) for each record of an Ethernet pcap."""
    with open(path, "rb") as f:
        head = f.read(_GLOBAL.size)
        if len(head) < _GLOBAL.size:
            raise PcapError(f"{path}: no pcap header")
        for order in "<>":
            magic = struct.unpack(order + "I", head[:4])[0]
            if magic in (PCAP_MAGIC, PCAP_MAGIC_NS):
                break
        else:
            raise PcapError(f"{path}: not a pcap file (magic {head[:4].hex()})")
        linktype = struct.unpack(order + "I", head[20:24])[0] & 0xFFFF
        if linktype != LINKTYPE_ETHERNET:
            raise PcapError(f"{path}: link type {linktype}, only Ethernet (1) is read")
        frac = 1e-9 if magic == PCAP_MAGIC_NS else 1e-6
        rec = struct.Struct(order + "IIII")
        while True:
            h = f.read(rec.size)
            if not h:
                return
            if len(h) < rec.size:
                raise PcapError(f"{path}: truncated record header")
            sec, sub, incl, _orig = rec.unpack(h)
            data = f.read(incl)
            if len(data) < incl:
                raise PcapError(f"{path}: truncated record")
            yield sec + sub * frac, data
