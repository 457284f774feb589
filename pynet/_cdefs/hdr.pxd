# Declarations of csrc/hdr.h for the Cython glue. cimport it as a module
# (`from pynet._cdefs cimport hdr as chdr`): its C names are the Python names
# in pynet/hdr.pxi.
from libc.stdint cimport int8_t, int16_t, uint8_t, uint16_t, uint32_t

cdef extern from "hdr.h" nogil:
    enum:
        HDR_OK
        HDR_ETOOBIG
        HDR_TCP_NUM_SACKS
        HDR_FASTOPEN_COOKIE_MAX
        HDR_IP_DF
        TH_CHECK
        IPH_LEN

    const char *hdr_strerror(int err)

    struct tcp_hot:
        uint16_t source, dest
        uint32_t seq, ack_seq
        uint16_t flags
        uint16_t window
        uint16_t doff
        uint32_t payload_len
        uint8_t saw_tstamp
        uint32_t rcv_tsval, rcv_tsecr
        uint8_t num_sacks
        uint32_t sack[4][2]

    int tcp_hdr_parse(const unsigned char *p, uint32_t len, tcp_hot *h)

    struct tcp_out_options:
        uint16_t mss
        int16_t wscale
        uint8_t sack_perm
        uint8_t ts
        uint32_t tsval, tsecr
        uint8_t num_sacks
        uint32_t sack[4][2]
        int8_t fastopen
        uint8_t fastopen_len
        uint8_t fastopen_cookie[16]

    int tcp_options_size(const tcp_out_options *o)
    int tcp_hdr_write(unsigned char *p, uint16_t source, uint16_t dest, uint32_t seq,
                      uint32_t ack_seq, uint16_t flags, uint16_t window, uint16_t urg_ptr,
                      const tcp_out_options *o)
    void ipv4_hdr_write(unsigned char *p, uint32_t saddr, uint32_t daddr, uint8_t protocol,
                        uint16_t id, uint8_t ttl, uint8_t tos, uint16_t frag_off, uint16_t tot_len)

    struct ipv4_hot:
        uint16_t ihl
        uint32_t tot_len
        uint16_t id
        uint16_t frag_off
        uint8_t tos, ttl, protocol
        uint32_t saddr, daddr

    int ipv4_hdr_parse(const unsigned char *p, uint32_t len, int verify, int gso_tcp,
                       ipv4_hot *h)
