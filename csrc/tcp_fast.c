/* tcp_fast.c - see tcp_fast.h. */
#include "tcp_fast.h"

#include <string.h>

#include "csum.h"
#include "hdr.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define TCPHDR_ACK 0x10
#define IP_MF_OFFSET 0x3fff

int tcp_pure_ack(const unsigned char *p, uint32_t len, int csum_ok, struct tcp_ack_key *k)
{
    struct ipv4_hot ip;
    struct tcp_hot th;

    if (len < ETH_HLEN + IPH_LEN + TH_LEN || csum_get_be16(p + 12) != ETH_P_IP)
        return 0;
    const unsigned char *iph = p + ETH_HLEN;
    if (ipv4_hdr_parse(iph, len - ETH_HLEN, 1, 0, &ip) != HDR_OK || ip.ihl != IPH_LEN
        || ip.protocol != IPPROTO_TCP || (ip.frag_off & IP_MF_OFFSET))
        return 0;
    const unsigned char *tcph = iph + IPH_LEN;
    uint32_t tcp_len = ip.tot_len - IPH_LEN;
    if (tcp_hdr_parse(tcph, tcp_len, &th) != HDR_OK || th.payload_len || th.num_sacks
        || th.flags != TCPHDR_ACK)
        return 0;
    if (!csum_ok && csum_tcpudp_magic(ip.saddr, ip.daddr, tcp_len, IPPROTO_TCP,
                          csum_partial(tcph, tcp_len, 0)) != 0)
        return 0;               /* a bad segment goes up alone, to be counted and dropped */
    memcpy(k->eth, p, ETH_HLEN);
    k->saddr = ip.saddr;
    k->daddr = ip.daddr;
    k->sport = th.source;
    k->dport = th.dest;
    k->seq = th.seq;
    k->ack_seq = th.ack_seq;
    k->saw_tstamp = th.saw_tstamp;
    k->tsval = th.saw_tstamp ? th.rcv_tsval : 0;
    return 1;
}

int tcp_ack_supersedes(const struct tcp_ack_key *prev, const struct tcp_ack_key *next)
{
    return memcmp(prev->eth, next->eth, ETH_HLEN) == 0
        && prev->saddr == next->saddr && prev->daddr == next->daddr
        && prev->sport == next->sport && prev->dport == next->dport
        && prev->seq == next->seq
        && (int32_t)(next->ack_seq - prev->ack_seq) > 0
        && prev->saw_tstamp == next->saw_tstamp
        && (int32_t)(next->tsval - prev->tsval) >= 0;
}
