/* skb.c - allocation, clone/copy and the pointer operations of sk_buff. */
#include "skb.h"

#include <stdlib.h>
#include <string.h>

static struct skb_shared_info *shinfo_alloc(uint32_t size)
{
    struct skb_shared_info *sh = malloc(sizeof(*sh) + (size ? size : 1));
    if (!sh)
        return NULL;
    sh->dataref = 1;
    sh->size = size;
    return sh;
}

static void shinfo_put(struct skb_shared_info *sh, uint32_t refs)
{
    sh->dataref -= refs;
    if ((sh->dataref & SKB_DATAREF_MASK) == 0)
        free(sh);
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
