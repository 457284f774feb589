/* tap.c - TAP device I/O (see tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include "tap.h"
#include "vnet.h"

int tap_open(const char *name, int vnet_hdr, char ifname[IFNAMSIZ])
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        goto fail;
    if (vnet_hdr) {
        int sz = sizeof(struct virtio_net_hdr);
        if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
            goto fail;
    }
    /* A persistent TAP keeps the last opener's offloads: always reset them. */
    if (ioctl(fd, TUNSETOFFLOAD, 0u) < 0)
        goto fail;
    memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
    ifname[IFNAMSIZ - 1] = 0;
    return fd;
fail:;
    int err = errno;
    close(fd);
    return -err;
}

int tap_set_persist(int fd, int persist)
{
    return ioctl(fd, TUNSETPERSIST, persist ? 1 : 0) < 0 ? -errno : 0;
}

int tap_set_offload(int fd, unsigned int tun_flags)
{
    return ioctl(fd, TUNSETOFFLOAD, tun_flags) < 0 ? -errno : 0;
}

int tap_write_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr, int *status,
                    uint64_t *sent_bytes)
{
    struct virtio_net_hdr h;
    struct iovec iov[2];
    int i;

    *sent_bytes = 0;
    for (i = 0; i < n; i++) {
        const struct sk_buff *skb = skbs[i];
        ssize_t r;
        iov[0].iov_base = &h;
        iov[0].iov_len = sizeof(h);
        iov[1].iov_base = skb_data(skb);
        iov[1].iov_len = skb_len(skb);
        if (vnet_hdr && vnet_hdr_from_skb(skb, &h) < 0) {
            status[i] = -EINVAL;
            continue;
        }
        do
            r = vnet_hdr ? writev(fd, iov, 2) : write(fd, iov[1].iov_base, iov[1].iov_len);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == EAGAIN)
            return i;
        status[i] = r < 0 ? -errno : 0;
        if (r >= 0)
            *sent_bytes += skb_len(skb);
    }
    return i;
}

long tap_bench_write_loop(int fd, const unsigned char *frame, uint32_t len, long count)
{
    long i = 0;
    while (i < count) {
        if (write(fd, frame, len) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        i++;
    }
    return i;
}
