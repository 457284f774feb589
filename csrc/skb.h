/* skb.h - pynet's packet buffer, with the semantics of Linux's sk_buff.
 *
 * One linear buffer [head, end) shared by clones through a refcounted
 * skb_shared_info, and per-skb data/tail offsets:
 *
 *   head ........ data ==== tail ........ end
 *        headroom     len       tailroom
 *
 * Plain C, no Python.h: the Cython glue in pynet/skbuff.pxi wraps it.
 * Functions return 0 on success and a negative SKB_E* code on misuse; the
 * __ variants skip the checks and are for paths that proved them already.
 */
#ifndef PYNET_SKB_H
#define PYNET_SKB_H

#include <stddef.h>
#include <stdint.h>

#define SKB_MAX_ALLOC (16u << 20)   /* 16 MiB: far past any 64 KB GSO skb */
#define SKB_CB_SIZE 48
#define SKB_HDR_UNSET 0xffffu

/* ip_summed, as in include/linux/skbuff.h */
enum {
    CHECKSUM_NONE = 0,        /* nobody has checked; the stack must */
    CHECKSUM_UNNECESSARY = 1, /* verified (rx) or not needed */
    CHECKSUM_COMPLETE = 2,    /* rx: csum holds the sum over the packet */
    CHECKSUM_PARTIAL = 3,     /* tx: device or GSO finishes at csum_start/offset */
};

/* gso_type bits, as Linux's SKB_GSO_* */
enum {
    SKB_GSO_TCPV4 = 1 << 0,
    SKB_GSO_DODGY = 1 << 2,
    SKB_GSO_TCP_ECN = 1 << 3,
    SKB_GSO_TCPV6 = 1 << 5,
    SKB_GSO_UDP_L4 = 1 << 17,
};

enum {
    SKB_OK = 0,
    SKB_ENOMEM = -1,
    SKB_EOVER = -2,     /* put/push past tailroom/headroom */
    SKB_EUNDER = -3,    /* pull/trim past len */
    SKB_ENOTEMPTY = -4, /* reserve on a non-empty skb */
    SKB_ERANGE = -5,    /* offset or size out of range */
};

struct skb_shared_info {
    uint32_t dataref;       /* references to the buffer (low 16: all refs, high 16: payload-only refs) */
    uint32_t size;          /* bytes in buf */
    unsigned char buf[];
};

#define SKB_DATAREF_SHIFT 16
#define SKB_DATAREF_MASK ((1u << SKB_DATAREF_SHIFT) - 1)

struct sk_buff {
    struct skb_shared_info *shinfo;
    unsigned char *head;        /* == shinfo->buf */
    uint32_t data;              /* offsets from head */
    uint32_t tail;
    uint32_t end;

    uint16_t mac_header;        /* offsets from head, SKB_HDR_UNSET if unknown */
    uint16_t network_header;
    uint16_t transport_header;

    uint8_t ip_summed;
    uint8_t cloned : 1;         /* this skb shares its buffer (set on both sides of a clone) */
    uint8_t nohdr : 1;          /* this skb promised not to touch the header area */
    uint16_t csum_start;        /* offset from head */
    uint16_t csum_offset;       /* from csum_start */
    uint32_t csum;

    uint16_t gso_size;
    uint16_t gso_segs;
    uint32_t gso_type;

    uint16_t protocol;          /* ethertype, host order */
    uint32_t mark;
    uint64_t tstamp_ns;
    unsigned char cb[SKB_CB_SIZE];  /* scratch for the layer that owns the skb */
};

/* The large-buffer cache (skb.c): what it holds and did since the start. */
#define SKB_CACHE_BYTES (16u << 20)
struct skb_buf_cache_stats {
    uint64_t buffers, bytes;     /* waiting now */
    uint64_t hits, misses;       /* allocations of a cached size: served, or from malloc */
    uint64_t overflow;           /* frees past SKB_CACHE_BYTES, given back to malloc */
};
void skb_buf_cache_read_stats(struct skb_buf_cache_stats *out);
/* Give every waiting buffer back to malloc (Linux's kmem_cache_shrink); the bytes freed. */
size_t skb_buf_cache_shrink(void);

int skb_init(struct sk_buff *skb, uint32_t size);
void skb_release(struct sk_buff *skb);
int skb_clone_into(struct sk_buff *n, struct sk_buff *skb);
int skb_copy_into(struct sk_buff *n, const struct sk_buff *skb, uint32_t headroom, uint32_t tailroom);

static inline uint32_t skb_len(const struct sk_buff *skb) { return skb->tail - skb->data; }
static inline uint32_t skb_headroom(const struct sk_buff *skb) { return skb->data; }
static inline uint32_t skb_tailroom(const struct sk_buff *skb) { return skb->end - skb->tail; }
static inline unsigned char *skb_data(const struct sk_buff *skb) { return skb->head + skb->data; }
static inline unsigned char *skb_tail_pointer(const struct sk_buff *skb) { return skb->head + skb->tail; }

static inline uint32_t skb_dataref(const struct sk_buff *skb) { return skb->shinfo->dataref & SKB_DATAREF_MASK; }
static inline int skb_shared_buffer(const struct sk_buff *skb) { return skb->cloned && skb_dataref(skb) != 1; }
int skb_header_cloned(const struct sk_buff *skb);
void skb_header_release(struct sk_buff *skb);

int skb_reserve(struct sk_buff *skb, uint32_t len);
int skb_put(struct sk_buff *skb, uint32_t len);
int skb_push(struct sk_buff *skb, uint32_t len);
int skb_pull(struct sk_buff *skb, uint32_t len);
int skb_trim(struct sk_buff *skb, uint32_t len);
static inline void __skb_put(struct sk_buff *skb, uint32_t len) { skb->tail += len; }
static inline void __skb_push(struct sk_buff *skb, uint32_t len) { skb->data -= len; }
static inline void __skb_pull(struct sk_buff *skb, uint32_t len) { skb->data += len; }

/* An empty receive skb, about to be filled by a driver: no data after its
 * headroom, no checksum or GSO state from an earlier frame. */
static inline void skb_rx_reset(struct sk_buff *skb)
{
    skb->tail = skb->data;
    skb->ip_summed = CHECKSUM_NONE;
    skb->gso_size = skb->gso_segs = 0;
    skb->gso_type = 0;
}

/* Give this skb a private copy of its buffer (Linux's pskb_expand_head with
 * extra head/tail room); offsets into the buffer keep their meaning. */
int skb_expand_head(struct sk_buff *skb, uint32_t nhead, uint32_t ntail);
/* skb_cow_head: private header area with at least headroom bytes before data. */
int skb_cow_head(struct sk_buff *skb, uint32_t headroom);
/* skb_unshare: private buffer, whole. */
int skb_unshare(struct sk_buff *skb);

/* Bytes charged to a socket for this skb: buffer plus metadata. */
static inline uint32_t skb_truesize(const struct sk_buff *skb)
{
    return skb->shinfo->size + (uint32_t)sizeof(struct sk_buff) + (uint32_t)sizeof(struct skb_shared_info);
}

#endif
