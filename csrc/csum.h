/* csum.h - the Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Plain C, no Python.h; the Cython glue is pynet/checksum.pxi.
 *
 * Byte order: a 16-bit checksum value here is an integer whose big-endian
 * encoding is what goes on the wire (0x1234 is the bytes 12 34), and sums are
 * sums of the buffer read as big-endian 16-bit words. A 32-bit sum (Linux's
 * __wsum) is unfolded: only its value modulo 0xffff means anything, so
 * compare sums after csum_fold().
 */
#ifndef PYNET_CSUM_H
#define PYNET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* The ones'-complement sum of buf (an odd last byte is padded with zero,
 * RFC 1071 section 4.1), added to sum. Any alignment. */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);

/* csum_partial while copying src to dst (they must not overlap): one pass. */
uint32_t csum_partial_copy(void *dst, const void *src, size_t len, uint32_t sum);

/* Ones'-complement addition of two 32-bit sums (end-around carry). */
static inline uint32_t csum_add(uint32_t a, uint32_t b)
{
    uint32_t r = a + b;
    return r + (r < a);
}

/* Fold a 32-bit sum to 16 bits, not inverted. */
static inline uint16_t csum_fold16(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* Fold and invert: the value to put in a checksum field. */
static inline uint16_t csum_fold(uint32_t sum)
{
    return (uint16_t)~csum_fold16(sum);
}

/* The sum over a block that starts at an odd offset of the packet, so its
 * words straddle the packet's words: swap the bytes (RFC 1071 section 2(B)). */
static inline uint32_t csum_block_add(uint32_t sum, uint32_t sum2, size_t offset)
{
    if (offset & 1)
        sum2 = (sum2 << 8 & 0xff00ff00u) | (sum2 >> 8 & 0x00ff00ffu);
    return csum_add(sum, sum2);
}

/* The IPv4 pseudo-header (RFC 793 section 3.1, RFC 768) added to sum.
 * Addresses in host order; proto the IP protocol number. */
uint32_t csum_tcpudp_nofold(uint32_t saddr, uint32_t daddr, uint32_t len,
                            uint8_t proto, uint32_t sum);

static inline uint16_t csum_tcpudp_magic(uint32_t saddr, uint32_t daddr, uint32_t len,
                                         uint8_t proto, uint32_t sum)
{
    return csum_fold(csum_tcpudp_nofold(saddr, daddr, len, proto, sum));
}

/* Checksum of an IPv4 header of ihl 32-bit words: 0 when the header is valid,
 * the value to store when its checksum field is zero. */
static inline uint16_t ip_fast_csum(const void *iph, unsigned ihl)
{
    return csum_fold(csum_partial(iph, (size_t)ihl * 4, 0));
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit word changed. */
static inline uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new_)
{
    uint32_t s = (uint16_t)~check;
    s = csum_add(s, (uint16_t)~old);
    s = csum_add(s, new_);
    return csum_fold(s);
}

/* The same for a 32-bit field (an address): two words changed at once. */
static inline uint16_t csum_replace4(uint16_t check, uint32_t old, uint32_t new_)
{
    uint32_t s = (uint16_t)~check;
    s = csum_add(s, (uint16_t)~(old >> 16));
    s = csum_add(s, (uint16_t)~old);
    s = csum_add(s, new_ >> 16);
    s = csum_add(s, new_ & 0xffff);
    return csum_fold(s);
}

/* Big-endian 16-bit load and store at any alignment. */
static inline uint16_t csum_get_be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void csum_put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* Big-endian 32-bit load and store at any alignment (sequence numbers, addresses). */
static inline uint32_t csum_get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void csum_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

#endif
