# Declarations of csrc/skb.h for the Cython glue.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "skb.h" nogil:
    enum:
        SKB_MAX_ALLOC
        SKB_CB_SIZE
        SKB_HDR_UNSET
        CHECKSUM_NONE
        CHECKSUM_UNNECESSARY
        CHECKSUM_COMPLETE
        CHECKSUM_PARTIAL
        SKB_GSO_TCPV4
        SKB_GSO_DODGY
        SKB_GSO_TCP_ECN
        SKB_GSO_TCPV6
        SKB_GSO_UDP_L4
        SKB_OK
        SKB_ENOMEM
        SKB_EOVER
        SKB_EUNDER
        SKB_ENOTEMPTY
        SKB_ERANGE

    struct skb_buf_cache_stats:
        uint64_t buffers, bytes, hits, misses, overflow

    enum:
        SKB_CACHE_BYTES

    void skb_buf_cache_read_stats(skb_buf_cache_stats *out)
    size_t buf_cache_shrink "skb_buf_cache_shrink"()

    struct skb_shared_info:
        uint32_t dataref
        uint32_t size

    struct sk_buff:
        skb_shared_info *shinfo
        unsigned char *head
        uint32_t data
        uint32_t tail
        uint32_t end
        uint16_t mac_header
        uint16_t network_header
        uint16_t transport_header
        uint8_t ip_summed
        uint8_t cloned
        uint8_t nohdr
        uint16_t csum_start
        uint16_t csum_offset
        uint32_t csum
        uint16_t gso_size
        uint16_t gso_segs
        uint32_t gso_type
        uint16_t protocol
        uint32_t mark
        uint64_t tstamp_ns
        unsigned char cb[48]

    int skb_init(sk_buff *skb, uint32_t size)
    void skb_release(sk_buff *skb)
    int skb_clone_into(sk_buff *n, sk_buff *skb)
    int skb_copy_into(sk_buff *n, const sk_buff *skb, uint32_t headroom, uint32_t tailroom)
    uint32_t skb_len(const sk_buff *skb)
    uint32_t skb_headroom(const sk_buff *skb)
    uint32_t skb_tailroom(const sk_buff *skb)
    unsigned char *skb_data(const sk_buff *skb)
    unsigned char *skb_tail_pointer(const sk_buff *skb)
    uint32_t skb_dataref(const sk_buff *skb)
    int skb_shared_buffer(const sk_buff *skb)
    int skb_header_cloned(const sk_buff *skb)
    void skb_header_release(sk_buff *skb)
    int skb_reserve(sk_buff *skb, uint32_t len)
    int skb_put(sk_buff *skb, uint32_t len)
    int skb_push(sk_buff *skb, uint32_t len)
    int skb_pull(sk_buff *skb, uint32_t len)
    int skb_trim(sk_buff *skb, uint32_t len)
    void __skb_put(sk_buff *skb, uint32_t len)
    void __skb_push(sk_buff *skb, uint32_t len)
    void __skb_pull(sk_buff *skb, uint32_t len)
    int skb_expand_head(sk_buff *skb, uint32_t nhead, uint32_t ntail)
    int skb_cow_head(sk_buff *skb, uint32_t headroom)
    int skb_unshare(sk_buff *skb)
    uint32_t skb_truesize(const sk_buff *skb)
