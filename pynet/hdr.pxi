# hdr.pxi - TCP/IPv4 header build and parse of the hot fields (csrc/hdr.c).
#
# Included by _core.pyx. Parsers take an SKB (its data) or any bytes-like
# object and raise pynet.wire.WireError on a malformed header; builders push
# a header into an SKB's headroom, set its header offset and checksum state.
# pynet.wire.tcp / pynet.wire.ipv4 are the reference they are tested against.

from libc.stdint cimport int16_t, uint8_t
from pynet._cdefs cimport hdr as chdr

DEF IPPROTO_TCP = 6
DEF IPPROTO_UDP = 17
DEF UDP_HLEN = 8


cdef object _wire_error(str what, int rc):
    from pynet.wire import WireError      # pynet.wire imports this module: resolve late
    return WireError(f"{what}: {chdr.hdr_strerror(rc).decode()}")


cdef inline int _skb_push_hdr(SKB skb, uint32_t n, str op) except -1:
    # skb_push for a header the caller writes at once: headroom must be there
    # (reserved at allocation, as Linux's MAX_TCP_HEADER); a shared header is copied first.
    # Callers record the header's offset in 16 bits (network/transport_header, csum_start).
    if n > skb_headroom(&skb.skb):
        _skb_check(SKB_EOVER, op, &skb.skb, n)
    if skb.skb.data - n >= SKB_HDR_UNSET:
        # the header's offset from head goes into a 16-bit field (0xffff: unset)
        raise SKBError(f"{op}: a header at offset {skb.skb.data - n} does not fit the "
                       f"16-bit header offsets")
    if skb_header_cloned(&skb.skb):
        skb._realloc(0, 0, op)
    __skb_push(&skb.skb, n)
    return 0


cdef inline void _put16(unsigned char *p, uint16_t v) noexcept nogil:
    p[0] = <unsigned char>(v >> 8)
    p[1] = <unsigned char>v


def tcp_hdr_parse(buf):
    """The hot fields of a TCP segment (an SKB with data at the TCP header, or bytes):

    (source, dest, seq, ack_seq, flags, window, doff, payload_len, ts, sack)
    doff is the header length in bytes; ts is (tsval, tsecr) or None; sack a
    tuple of (start, end) blocks. Options are validated as TcpRepr.parse does
    (WireError if malformed); SYN-only options (MSS, WS, SACK-permitted, Fast
    Open) are checked but read with TcpRepr. The checksum is not verified.
    """
    cdef chdr.tcp_hot h
    cdef Py_buffer view
    cdef int rc
    cdef SKB skb
    if type(buf) is SKB:
        skb = <SKB>buf
        rc = chdr.tcp_hdr_parse(skb_data(&skb.skb), skb_len(&skb.skb), &h)
    else:
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            if view.len > 0xFFFFFFFF:
                raise _wire_error("tcp", chdr.HDR_ETOOBIG)
            rc = chdr.tcp_hdr_parse(<const unsigned char *>view.buf, <uint32_t>view.len, &h)
        finally:
            PyBuffer_Release(&view)
    if rc != chdr.HDR_OK:
        raise _wire_error("tcp", rc)
    ts = (h.rcv_tsval, h.rcv_tsecr) if h.saw_tstamp else None
    sack = tuple([(h.sack[i][0], h.sack[i][1]) for i in range(h.num_sacks)])
    return (h.source, h.dest, h.seq, h.ack_seq, h.flags, h.window, h.doff, h.payload_len, ts, sack)


def ipv4_hdr_parse(buf, bint verify=True):
    """Validate an IPv4 header (an SKB with data at it, or bytes) and read it:

    (ihl, tot_len, id, frag_off, tos, ttl, protocol, saddr, daddr)
    ihl in bytes, frag_off the raw 16 bits. WireError on a short buffer, a
    version other than 4, a bad ihl or tot_len, or (verify) a bad checksum.
    A TCP GSO skb over 64 KB (BIG TCP) carries tot_len 0: its length is
    the skb's, as Linux's iph_totlen reads it.
    """
    cdef chdr.ipv4_hot h
    cdef Py_buffer view
    cdef int rc
    cdef SKB skb
    if type(buf) is SKB:
        skb = <SKB>buf
        rc = chdr.ipv4_hdr_parse(skb_data(&skb.skb), skb_len(&skb.skb), verify,
                                 _skb_is_gso_tcpv4(skb), &h)
    else:
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            rc = chdr.ipv4_hdr_parse(<const unsigned char *>view.buf,
                                     <uint32_t>min(view.len, 0xFFFFFFFF), verify, 0, &h)
        finally:
            PyBuffer_Release(&view)
    if rc != chdr.HDR_OK:
        raise _wire_error("ipv4", rc)
    return (h.ihl, h.tot_len, h.id, h.frag_off, h.tos, h.ttl, h.protocol, h.saddr, h.daddr)


cdef inline int _l4_check(SKB skb, uint32_t saddr, uint32_t daddr, uint8_t proto,
                          uint16_t check_off, bint partial, bint udp) except -1:
    # full checksum over header + payload, or the pseudo-header sum for CHECKSUM_PARTIAL
    cdef unsigned char *p = skb_data(&skb.skb)
    cdef uint32_t length = skb_len(&skb.skb)
    cdef uint16_t check
    cdef uint32_t sum
    if partial:
        check = ccsum.csum_fold16(ccsum.csum_tcpudp_nofold(saddr, daddr, length, proto, 0))
        skb.skb.ip_summed = CHECKSUM_PARTIAL
        skb.skb.csum_start = <uint16_t>skb.skb.data
        skb.skb.csum_offset = check_off
    else:
        skb.exports += 1        # pin the buffer: _csum_buffer drops the GIL from 16 KB
        try:
            sum = _csum_buffer(p, length, 0)
        finally:
            skb.exports -= 1
        check = ccsum.csum_tcpudp_magic(saddr, daddr, length, proto, sum)
        if udp and check == 0:
            check = 0xFFFF          # RFC 768: a computed 0 goes out as all ones
        skb.skb.ip_summed = CHECKSUM_NONE
    _put16(p + check_off, check)
    return 0


def tcp_hdr_push(SKB skb not None, uint16_t source, uint16_t dest, uint32_t seq,
                 uint32_t ack_seq, uint16_t flags, uint16_t window, uint32_t saddr,
                 uint32_t daddr, ts=None, sack=(), uint16_t mss=0, int wscale=-1,
                 bint sack_perm=False, fastopen=None, bint fastopen_exp=False,
                 uint16_t urg_ptr=0, bint partial=False):
    """Push a TCP header in front of skb's data (the payload) and return its length.

    Options go in Linux's order: mss (0: none), ts (tsval, tsecr), sack_perm,
    wscale (-1: none), sack ((start, end), ... up to 4), fastopen (cookie
    bytes, b"" for a request; fastopen_exp for kind 254). Sets
    transport_header. partial=True leaves the checksum to the device
    (CHECKSUM_PARTIAL, csum_start/csum_offset set, pseudo-header sum in the
    field); otherwise the full checksum is written. A GSO skb wants
    partial=True: segmentation finishes each segment's checksum. saddr/daddr
    are the IPv4 addresses of the pseudo-header, host order.
    """
    cdef chdr.tcp_out_options o
    cdef Py_ssize_t i, n
    cdef const unsigned char[::1] cookie
    memset(&o, 0, sizeof(o))
    o.mss = mss
    if not -1 <= wscale <= 14:
        raise ValueError(f"wscale {wscale} out of range -1..14 (RFC 7323 2.3)")
    o.wscale = <int16_t>wscale
    o.sack_perm = sack_perm
    if ts is not None:
        o.ts = 1
        o.tsval, o.tsecr = ts
    n = len(sack)
    if n > chdr.HDR_TCP_NUM_SACKS:
        raise _wire_error(f"tcp: {n} SACK blocks", chdr.HDR_ETOOBIG)
    o.num_sacks = <uint8_t>n
    for i in range(n):
        o.sack[i][0], o.sack[i][1] = sack[i]
    if fastopen is not None:
        cookie = fastopen
        n = cookie.shape[0]
        if n and not 4 <= n <= chdr.HDR_FASTOPEN_COOKIE_MAX:
            raise _wire_error(f"tcp: Fast Open cookie of {n} bytes", chdr.HDR_ETOOBIG)
        o.fastopen = 2 if fastopen_exp else 1
        o.fastopen_len = <uint8_t>n
        if n:
            memcpy(o.fastopen_cookie, &cookie[0], n)
    cdef int optlen = chdr.tcp_options_size(&o)
    if optlen < 0:
        raise _wire_error("tcp options", optlen)
    _skb_push_hdr(skb, 20 + optlen, "tcp_hdr_push")
    cdef int hl = chdr.tcp_hdr_write(skb_data(&skb.skb), source, dest, seq, ack_seq, flags,
                                     window, urg_ptr, &o)
    skb.skb.transport_header = <uint16_t>skb.skb.data
    _l4_check(skb, saddr, daddr, IPPROTO_TCP, chdr.TH_CHECK, partial, False)
    return hl


def udp_hdr_push(SKB skb not None, uint16_t source, uint16_t dest, uint32_t saddr,
                 uint32_t daddr, bint partial=False):
    """Push a UDP header in front of skb's data (the payload); checksum as tcp_hdr_push."""
    cdef uint32_t length = skb_len(&skb.skb) + UDP_HLEN
    if length > 0xFFFF:
        raise _wire_error(f"udp: {length} bytes", chdr.HDR_ETOOBIG)
    _skb_push_hdr(skb, UDP_HLEN, "udp_hdr_push")
    cdef unsigned char *p = skb_data(&skb.skb)
    _put16(p, source)
    _put16(p + 2, dest)
    _put16(p + 4, <uint16_t>length)
    _put16(p + 6, 0)
    skb.skb.transport_header = <uint16_t>skb.skb.data
    _l4_check(skb, saddr, daddr, IPPROTO_UDP, 6, partial, True)
    return UDP_HLEN


cdef inline bint _skb_is_gso_tcpv4(SKB skb):
    return skb.skb.gso_size != 0 and (skb.skb.gso_type & SKB_GSO_TCPV4) != 0


cdef uint16_t _ipv4_tot_len(SKB skb, uint32_t length) except? 0:
    """The tot_len field of a datagram of `length` bytes: 0 for a TCP GSO
    skb over 65535 bytes (BIG TCP: its length is the skb's, as Linux's
    iph_set_totlen writes it); WireError for any other that long."""
    if length <= 0xFFFF:
        return <uint16_t>length
    if _skb_is_gso_tcpv4(skb):
        return 0
    raise _wire_error(f"ipv4: {length} bytes", chdr.HDR_ETOOBIG)


def ipv4_hdr_push(SKB skb not None, uint32_t saddr, uint32_t daddr, uint8_t protocol,
                  uint16_t id, uint8_t ttl=64, uint8_t tos=0, bint df=True):
    """Push a 20-byte IPv4 header (no options; Ipv4Repr writes those) in front of
    skb's data, tot_len covering all of it (0 for a BIG TCP GSO skb), with its
    checksum; sets network_header and skb.protocol. Returns 20. A checksum left
    PARTIAL by the transport stays so."""
    cdef uint16_t tot_len = _ipv4_tot_len(skb, skb_len(&skb.skb) + chdr.IPH_LEN)
    _skb_push_hdr(skb, chdr.IPH_LEN, "ipv4_hdr_push")
    chdr.ipv4_hdr_write(skb_data(&skb.skb), saddr, daddr, protocol, id, ttl, tos,
                        chdr.HDR_IP_DF if df else 0, tot_len)
    skb.skb.network_header = <uint16_t>skb.skb.data
    skb.skb.protocol = 0x0800
    return chdr.IPH_LEN


from pynet._cdefs.tcp_fast cimport tcp_ack_key, tcp_pure_ack, tcp_ack_supersedes


def tcp_ack_coalesce(skbs):
    """Fold runs of pure ACKs in a received batch (frames at the Ethernet
    header): returns (skbs to hand up, in order; the number folded away).

    In a run of pure ACKs of one flow, each acknowledging more than the one
    before (csrc/tcp_fast.h says which ACKs qualify), the first and the last
    go up and those between are dropped: each of them advanced the ACK, so
    none is a duplicate ACK, and the last says all they said (ACKs are
    cumulative). The first is kept because C cannot tell whether it
    duplicates what the socket already has. Duplicate ACKs, SACKs and
    anything with data or another flag go up as they came."""
    cdef list out = []
    cdef tcp_ack_key keys[2]
    cdef int cur = 0
    cdef bint prev_ok = False, prev_adv = False, ok, adv
    cdef Py_ssize_t folded = 0
    cdef SKB skb
    for obj in skbs:
        skb = <SKB?>obj
        ok = tcp_pure_ack(skb_data(&skb.skb), skb_len(&skb.skb),
                          skb.skb.ip_summed == CHECKSUM_UNNECESSARY
                          or skb.skb.ip_summed == CHECKSUM_PARTIAL, &keys[cur])
        adv = ok and prev_ok and tcp_ack_supersedes(&keys[1 - cur], &keys[cur])
        if adv and prev_adv:
            out[len(out) - 1] = skb        # (the module is built without wraparound)
            folded += 1
        else:
            out.append(skb)
        prev_ok = ok
        prev_adv = adv
        cur = 1 - cur
    return out, folded


def tcp_v4_frame_push(SKB skb not None, const unsigned char[::1] hh, uint32_t saddr,
                      uint32_t daddr, uint16_t source, uint16_t dest, uint32_t seq,
                      uint32_t ack_seq, uint16_t flags, uint16_t window, ts, sack,
                      uint16_t ip_id, uint8_t ttl, uint8_t tos, bint df, bint partial):
    """The transmit fast path's headers in one call: what tcp_hdr_push (with
    the pseudo-header addresses), ipv4_hdr_push and the neighbour's cached
    link header (push_data(hh)) do one after the other, for a segment of an
    established connection (options: timestamps, SACK blocks). Sets the
    transport, network and mac headers and skb.protocol; partial as in
    tcp_hdr_push. Returns the bytes pushed."""
    cdef chdr.tcp_out_options o
    cdef Py_ssize_t i, n = len(sack)
    cdef Py_ssize_t hhlen = hh.shape[0]
    memset(&o, 0, sizeof(o))
    o.wscale = -1
    if ts is not None:
        o.ts = 1
        o.tsval, o.tsecr = ts
    if n > chdr.HDR_TCP_NUM_SACKS:
        raise _wire_error(f"tcp: {n} SACK blocks", chdr.HDR_ETOOBIG)
    o.num_sacks = <uint8_t>n
    for i in range(n):
        o.sack[i][0], o.sack[i][1] = sack[i]
    cdef int optlen = chdr.tcp_options_size(&o)
    if optlen < 0:
        raise _wire_error("tcp options", optlen)
    cdef uint16_t tot_len = _ipv4_tot_len(skb, skb_len(&skb.skb) + 20 + optlen + chdr.IPH_LEN)
    _skb_push_hdr(skb, 20 + optlen, "tcp_v4_frame_push")
    chdr.tcp_hdr_write(skb_data(&skb.skb), source, dest, seq, ack_seq, flags, window, 0, &o)
    skb.skb.transport_header = <uint16_t>skb.skb.data
    _l4_check(skb, saddr, daddr, IPPROTO_TCP, chdr.TH_CHECK, partial, False)
    _skb_push_hdr(skb, chdr.IPH_LEN, "tcp_v4_frame_push")
    chdr.ipv4_hdr_write(skb_data(&skb.skb), saddr, daddr, IPPROTO_TCP, ip_id, ttl, tos,
                        chdr.HDR_IP_DF if df else 0, tot_len)
    skb.skb.network_header = <uint16_t>skb.skb.data
    skb.skb.protocol = 0x0800
    _skb_push_hdr(skb, <uint32_t>hhlen, "tcp_v4_frame_push")
    if hhlen:
        memcpy(skb_data(&skb.skb), &hh[0], hhlen)
    skb.skb.mac_header = <uint16_t>skb.skb.data
    return 20 + optlen + chdr.IPH_LEN + hhlen
