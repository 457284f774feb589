# Declarations of csrc/csum.h for the Cython glue. cimport it as a module
# (`from pynet._cdefs cimport csum as ccsum`): its C names are the Python
# names of pynet.checksum, which live in the same extension module.
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef extern from "csum.h" nogil:
    uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
    uint32_t csum_partial_copy(void *dst, const void *src, size_t len, uint32_t sum)
    uint32_t csum_add(uint32_t a, uint32_t b)
    uint16_t csum_fold16(uint32_t sum)
    uint16_t csum_fold(uint32_t sum)
    uint32_t csum_tcpudp_nofold(uint32_t saddr, uint32_t daddr, uint32_t len,
                                uint8_t proto, uint32_t sum)
    uint16_t csum_tcpudp_magic(uint32_t saddr, uint32_t daddr, uint32_t len,
                               uint8_t proto, uint32_t sum)
    uint16_t ip_fast_csum(const void *iph, unsigned ihl)
    uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new_)
    uint16_t csum_replace4(uint16_t check, uint32_t old, uint32_t new_)
    uint16_t csum_get_be16(const unsigned char *p)
    void csum_put_be16(unsigned char *p, uint16_t v)
