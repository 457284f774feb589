# Declarations of csrc/tcp_fast.h for the Cython glue (pynet/hdr.pxi).
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef extern from "tcp_fast.h" nogil:
    struct tcp_ack_key:
        unsigned char eth[14]
        uint32_t saddr, daddr
        uint16_t sport, dport
        uint32_t seq, ack_seq
        uint8_t saw_tstamp
        uint32_t tsval

    int tcp_pure_ack(const unsigned char *p, uint32_t len, int csum_ok, tcp_ack_key *k)
    int tcp_ack_supersedes(const tcp_ack_key *prev, const tcp_ack_key *next)
