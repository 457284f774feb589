/* csum.c - the Internet checksum over a buffer (RFC 1071).
 *
 * The loop adds native-order 16-bit words, deferring the carries (RFC 1071
 * section 2(C)): blocks of up to 65536 words go into a 32-bit sum, which
 * cannot overflow (65536 * 0xffff < 2^32), and the blocks into a 64-bit
 * accumulator. The inner loop is a plain reduction over 32-bit lanes that the
 * compiler vectorises at -O3 (twice the lanes of a 64-bit one). Summing
 * little-endian words and swapping the folded result gives the big-endian
 * sum: the ones'-complement sum does not depend on byte order (section 2(B)).
 */
#include "csum.h"

#include <string.h>

static inline uint16_t load16(const unsigned char *p)
{
    uint16_t w;
    memcpy(&w, p, 2);   /* any alignment; compiles to one load */
    return w;
}

/* Fold a 64-bit accumulator of native-order words to a big-endian 16-bit sum. */
static inline uint32_t fold_native(uint64_t acc)
{
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    uint16_t s = csum_fold16((uint32_t)acc);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    s = (uint16_t)(s << 8 | s >> 8);
#endif
    return s;
}

/* The trailing odd byte is the high byte of a big-endian word: in a native
 * little-endian word that is the low byte. */
static inline uint64_t odd_byte(unsigned char b)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return b;
#else
    return (uint64_t)b << 8;
#endif
}

uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
    const unsigned char *p = buf;
    size_t words = len / 2;
    uint64_t acc = 0;
    size_t i = 0;
    while (i < words) {
        size_t end = words - i > 65536 ? i + 65536 : words;
        uint32_t block = 0;
        for (; i < end; i++)
            block += load16(p + 2 * i);
        acc += block;
    }
    if (len & 1)
        acc += odd_byte(p[len - 1]);
    return csum_add(sum, fold_native(acc));
}

uint32_t csum_partial_copy(void *restrict dst, const void *restrict src, size_t len, uint32_t sum)
{
    /* Copy, then sum the destination while it is still in L1: in blocks, so
     * a 64 KB payload is read from memory once. */
    unsigned char *d = dst;
    const unsigned char *s = src;
    enum { BLOCK = 4096 };
    uint32_t acc = sum;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < BLOCK ? len - done : BLOCK;
        memcpy(d + done, s + done, n);
        acc = csum_block_add(acc, csum_partial(d + done, n, 0), done);
        done += n;
    }
    return acc;
}

uint32_t csum_tcpudp_nofold(uint32_t saddr, uint32_t daddr, uint32_t len,
                            uint8_t proto, uint32_t sum)
{
    uint64_t s = sum;
    s += (saddr >> 16) + (saddr & 0xffff);
    s += (daddr >> 16) + (daddr & 0xffff);
    s += proto;
    s += (len >> 16) + (len & 0xffff);
    s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s + (uint32_t)(s >> 32);
}
