/* skb.c - allocation, clone/copy and the pointer operations of sk_buff. */
#include "skb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define buf_cache_poison(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define buf_cache_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define buf_cache_poison(p, n) ((void)(p), (void)(n))
#define buf_cache_unpoison(p, n) ((void)(p), (void)(n))
#endif

/* The large-buffer cache: freed buffers of SKB_CACHE_MIN..SKB_CACHE_MAX
 * bytes wait, by size class (SKB_CACHE_ALIGN steps), for the next skb of
 * their class, as Linux's slab caches keep skb heads. Bulk TCP frees a
 * window of 64 KB buffers on each ACK and allocates as many again for the
 * next writes; through malloc, each round of that returned memory to the
 * kernel (heap trimming) and faulted it back in, page by page (pynet ->
 * kernel over a TAP: 14.1 against 17.3 Gbit/s with malloc told not to
 * trim). At most SKB_CACHE_BYTES wait; beyond that they are freed. A mutex,
 * because C's GSO allocates without the GIL. */
#define SKB_CACHE_MIN (16u << 10)
#define SKB_CACHE_MAX (320u << 10)   /* a 256 KB BIG TCP super-segment and its headers */
#define SKB_CACHE_ALIGN (4u << 10)
#define SKB_CACHE_CLASSES (SKB_CACHE_MAX / SKB_CACHE_ALIGN + 1)

struct skb_buf_cache_entry {
    struct skb_buf_cache_entry *next;
};

static struct {
    pthread_mutex_t lock;
    struct skb_buf_cache_entry *free[SKB_CACHE_CLASSES];
    struct skb_buf_cache_stats stats;
} buf_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The class of a buffer of `size` bytes (its allocation, rounded up), or
 * 0 if the cache does not keep its size. */
static uint32_t buf_cache_class(uint32_t size)
{
    if (size < SKB_CACHE_MIN || size > SKB_CACHE_MAX)
        return 0;
    return (size + SKB_CACHE_ALIGN - 1) / SKB_CACHE_ALIGN;
}

static size_t buf_cache_alloc_size(uint32_t cls)
{
    return sizeof(struct skb_shared_info) + (size_t)cls * SKB_CACHE_ALIGN;
}

static struct skb_shared_info *shinfo_alloc(uint32_t size)
{
    struct skb_shared_info *sh = NULL;
    uint32_t cls = buf_cache_class(size);
    if (cls) {
        pthread_mutex_lock(&buf_cache.lock);
        struct skb_buf_cache_entry *e = buf_cache.free[cls];
        if (e) {
            buf_cache.free[cls] = e->next;
            buf_cache.stats.buffers--;
            buf_cache.stats.bytes -= buf_cache_alloc_size(cls);
            buf_cache.stats.hits++;
        } else {
            buf_cache.stats.misses++;
        }
        pthread_mutex_unlock(&buf_cache.lock);
        if (e) {
            buf_cache_unpoison(e, buf_cache_alloc_size(cls));
            sh = (struct skb_shared_info *)e;
        } else {
            sh = malloc(buf_cache_alloc_size(cls));
        }
    } else {
        sh = malloc(sizeof(*sh) + (size ? size : 1));
    }
    if (!sh)
        return NULL;
    sh->dataref = 1;
    sh->size = size;
    return sh;
}

static void shinfo_free(struct skb_shared_info *sh)
{
    uint32_t cls = buf_cache_class(sh->size);
    if (cls) {
        size_t n = buf_cache_alloc_size(cls);
        struct skb_buf_cache_entry *e = (struct skb_buf_cache_entry *)sh;
        pthread_mutex_lock(&buf_cache.lock);
        int keep = buf_cache.stats.bytes + n <= SKB_CACHE_BYTES;
        if (keep) {
            e->next = buf_cache.free[cls];
            buf_cache.free[cls] = e;
            buf_cache.stats.buffers++;
            buf_cache.stats.bytes += n;
        } else {
            buf_cache.stats.overflow++;
        }
        pthread_mutex_unlock(&buf_cache.lock);
        if (keep) {
            buf_cache_poison((unsigned char *)e + sizeof(*e), n - sizeof(*e));
            return;
        }
    }
    free(sh);
}

void skb_buf_cache_read_stats(struct skb_buf_cache_stats *out)
{
    pthread_mutex_lock(&buf_cache.lock);
    *out = buf_cache.stats;
    pthread_mutex_unlock(&buf_cache.lock);
}

size_t skb_buf_cache_shrink(void)
{
    struct skb_buf_cache_entry *lists[SKB_CACHE_CLASSES];
    pthread_mutex_lock(&buf_cache.lock);
    size_t bytes = buf_cache.stats.bytes;
    memcpy(lists, buf_cache.free, sizeof(lists));
    memset(buf_cache.free, 0, sizeof(buf_cache.free));
    buf_cache.stats.buffers = buf_cache.stats.bytes = 0;
    pthread_mutex_unlock(&buf_cache.lock);
    for (uint32_t cls = 0; cls < SKB_CACHE_CLASSES; cls++) {
        while (lists[cls]) {
            struct skb_buf_cache_entry *e = lists[cls];
            lists[cls] = e->next;
            buf_cache_unpoison(e, buf_cache_alloc_size(cls));
            free(e);
        }
    }
    return bytes;
}

static void shinfo_put(struct skb_shared_info *sh, uint32_t refs)
{
    sh->dataref -= refs;
    if ((sh->dataref & SKB_DATAREF_MASK) == 0)
        shinfo_free(sh);
}

/* What one skb holds on its buffer: one reference, plus one payload-only
 * mark when it released its header. */
static uint32_t skb_own_refs(const struct sk_buff *skb)
{
    return 1u + (skb->nohdr ? (1u << SKB_DATAREF_SHIFT) : 0u);
}

int skb_init(struct sk_buff *skb, uint32_t size)
{
    memset(skb, 0, sizeof(*skb));
    if (size > SKB_MAX_ALLOC)
        return SKB_ERANGE;
    skb->shinfo = shinfo_alloc(size);
    if (!skb->shinfo)
        return SKB_ENOMEM;
    skb->head = skb->shinfo->buf;
    skb->end = size;
    skb->mac_header = skb->network_header = skb->transport_header = SKB_HDR_UNSET;
    return SKB_OK;
}

void skb_release(struct sk_buff *skb)
{
    if (skb->shinfo)
        shinfo_put(skb->shinfo, skb_own_refs(skb));
    skb->shinfo = NULL;
    skb->head = NULL;
    skb->data = skb->tail = skb->end = 0;
}

int skb_clone_into(struct sk_buff *n, struct sk_buff *skb)
{
    if ((skb_dataref(skb) + 1) > SKB_DATAREF_MASK)
        return SKB_ERANGE;
    memcpy(n, skb, sizeof(*n));
    n->nohdr = 0;   /* the clone owns the header area (Linux's __skb_clone) */
    n->cloned = 1;
    skb->cloned = 1;
    skb->shinfo->dataref += 1;
    return SKB_OK;
}

int skb_copy_into(struct sk_buff *n, const struct sk_buff *skb, uint32_t headroom, uint32_t tailroom)
{
    uint32_t len = skb_len(skb);
    uint64_t size = (uint64_t)headroom + len + tailroom;
    if (size > SKB_MAX_ALLOC)
        return SKB_ERANGE;
    struct skb_shared_info *sh = shinfo_alloc((uint32_t)size);
    if (!sh)
        return SKB_ENOMEM;
    memcpy(n, skb, sizeof(*n));
    n->shinfo = sh;
    n->head = sh->buf;
    n->cloned = 0;
    n->nohdr = 0;
    memcpy(n->head + headroom, skb_data(skb), len);
    /* Header and checksum offsets are relative to head: shift them with data. */
    int32_t shift = (int32_t)headroom - (int32_t)skb->data;
    n->data = headroom;
    n->tail = headroom + len;
    n->end = (uint32_t)size;
#define SHIFT_HDR(f) do { if (skb->f != SKB_HDR_UNSET) { int32_t v = (int32_t)skb->f + shift; \
        n->f = (v >= 0 && v < SKB_HDR_UNSET) ? (uint16_t)v : SKB_HDR_UNSET; } } while (0)
    SHIFT_HDR(mac_header);
    SHIFT_HDR(network_header);
    SHIFT_HDR(transport_header);
#undef SHIFT_HDR
    if (skb->ip_summed == CHECKSUM_PARTIAL) {
        int32_t v = (int32_t)skb->csum_start + shift;
        n->csum_start = (v >= 0 && v <= 0xffff) ? (uint16_t)v : 0;
        if (v < 0 || v > 0xffff)
            n->ip_summed = CHECKSUM_NONE;
    }
    return SKB_OK;
}

int skb_header_cloned(const struct sk_buff *skb)
{
    if (!skb->cloned)
        return 0;
    uint32_t ref = skb->shinfo->dataref;
    ref = (ref & SKB_DATAREF_MASK) - (ref >> SKB_DATAREF_SHIFT);
    return ref != 1;
}

void skb_header_release(struct sk_buff *skb)
{
    if (skb->nohdr)
        return;
    skb->nohdr = 1;
    skb->shinfo->dataref += 1u << SKB_DATAREF_SHIFT;
}

int skb_reserve(struct sk_buff *skb, uint32_t len)
{
    if (skb->tail != skb->data)
        return SKB_ENOTEMPTY;
    if (len > skb_tailroom(skb))
        return SKB_EOVER;
    skb->data += len;
    skb->tail += len;
    return SKB_OK;
}

int skb_put(struct sk_buff *skb, uint32_t len)
{
    if (len > skb_tailroom(skb))
        return SKB_EOVER;
    __skb_put(skb, len);
    return SKB_OK;
}

int skb_push(struct sk_buff *skb, uint32_t len)
{
    if (len > skb_headroom(skb))
        return SKB_EOVER;
    __skb_push(skb, len);
    return SKB_OK;
}

int skb_pull(struct sk_buff *skb, uint32_t len)
{
    if (len > skb_len(skb))
        return SKB_EUNDER;
    __skb_pull(skb, len);
    return SKB_OK;
}

int skb_trim(struct sk_buff *skb, uint32_t len)
{
    if (len > skb_len(skb))
        return SKB_EUNDER;
    skb->tail = skb->data + len;
    return SKB_OK;
}

/* Header offsets are 16-bit, as in Linux; one pushed past that is forgotten. */
static void shift_hdr(uint16_t *off, uint32_t by)
{
    if (*off != SKB_HDR_UNSET)
        *off = ((uint32_t)*off + by < SKB_HDR_UNSET) ? (uint16_t)(*off + by) : SKB_HDR_UNSET;
}

int skb_expand_head(struct sk_buff *skb, uint32_t nhead, uint32_t ntail)
{
    uint64_t size = (uint64_t)nhead + skb->end + ntail;
    if (size > SKB_MAX_ALLOC)
        return SKB_ERANGE;
    struct skb_shared_info *sh = shinfo_alloc((uint32_t)size);
    if (!sh)
        return SKB_ENOMEM;
    memcpy(sh->buf + nhead, skb->head, skb->end);
    shinfo_put(skb->shinfo, skb_own_refs(skb));
    skb->shinfo = sh;
    skb->head = sh->buf;
    skb->data += nhead;
    skb->tail += nhead;
    skb->end += nhead;
    if (nhead) {
        shift_hdr(&skb->mac_header, nhead);
        shift_hdr(&skb->network_header, nhead);
        shift_hdr(&skb->transport_header, nhead);
        if (skb->ip_summed == CHECKSUM_PARTIAL) {
            uint16_t start = skb->csum_start;
            shift_hdr(&start, nhead);
            if (start == SKB_HDR_UNSET)
                skb->ip_summed = CHECKSUM_NONE;
            skb->csum_start = start;
        }
    }
    skb->end += ntail;
    skb->cloned = 0;
    skb->nohdr = 0;
    return SKB_OK;
}

int skb_cow_head(struct sk_buff *skb, uint32_t headroom)
{
    uint32_t delta = headroom > skb_headroom(skb) ? headroom - skb_headroom(skb) : 0;
    if (delta || skb_header_cloned(skb))
        return skb_expand_head(skb, delta, 0);
    return SKB_OK;
}

int skb_unshare(struct sk_buff *skb)
{
    if (skb_shared_buffer(skb))
        return skb_expand_head(skb, 0, 0);
    skb->cloned = 0;
    return SKB_OK;
}
