"""Counters in the shape of Linux's /proc/net/snmp and /proc/net/netstat.

Each MIB is a fixed set of named counters; `inc` on an unknown name is a bug
and raises KeyError, so a typo cannot create a counter nobody reads.

    mib = stack.mib
    mib.ip["InReceives"]        # one int per RFC 4293 / Linux counter
    mib.inc("Ip", "InHdrErrors")
"""

IP_FIELDS = (
    "InReceives", "InHdrErrors", "InAddrErrors", "InUnknownProtos", "InDiscards",
    "InDelivers", "OutRequests", "OutDiscards", "OutNoRoutes", "ReasmTimeout",
    "ReasmReqds", "ReasmOKs", "ReasmFails", "ReasmOverlaps", "FragOKs", "FragFails",
    "FragCreates", "InTruncatedPkts", "InCsumErrors",
)
ICMP_FIELDS = (
    "InMsgs", "InErrors", "InCsumErrors", "InDestUnreachs", "InTimeExcds", "InParmProbs",
    "InEchos", "InEchoReps", "OutMsgs", "OutErrors", "OutRateLimitGlobal",
    "OutRateLimitHost", "OutDestUnreachs", "OutTimeExcds", "OutEchos", "OutEchoReps",
)
UDP_FIELDS = (
    "InDatagrams", "NoPorts", "InErrors", "OutDatagrams", "RcvbufErrors",
    "SndbufErrors", "InCsumErrors",
)
TCP_FIELDS = (
    "ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets", "CurrEstab",
    "InSegs", "OutSegs", "RetransSegs", "InErrs", "OutRsts", "InCsumErrors",
)

# /proc/net/netstat TcpExt, the counters pynet keeps
TCPEXT_FIELDS = (
    "TCPFastOpenActive", "TCPFastOpenActiveFail", "TCPFastOpenPassive", "TCPFastOpenPassiveFail",
    "TCPFastOpenListenOverflow", "TCPFastOpenCookieReqd", "TCPFastOpenPassiveAltKey",
)


class Mib(dict):
    """One group of counters, all starting at zero."""

    def __init__(self, fields):
        super().__init__((f, 0) for f in fields)

    def inc(self, field, n=1):
        self[field] += n

    def __missing__(self, field):
        raise KeyError(f"no counter {field!r} in this MIB")


class Snmp:
    """All of a stack's MIBs; the TCP room reads and bumps `tcp`."""

    def __init__(self):
        self.ip = Mib(IP_FIELDS)
        self.icmp = Mib(ICMP_FIELDS)
        self.udp = Mib(UDP_FIELDS)
        self.tcp = Mib(TCP_FIELDS)
        self.tcpext = Mib(TCPEXT_FIELDS)

    def as_dict(self):
        return {"Ip": dict(self.ip), "Icmp": dict(self.icmp),
                "Udp": dict(self.udp), "Tcp": dict(self.tcp), "TcpExt": dict(self.tcpext)}
