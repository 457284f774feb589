"""The packet buffer: pointer arithmetic, bounds, sharing and the queue."""
import gc

import pytest

from pynet.skbuff import (CHECKSUM_NONE, CHECKSUM_PARTIAL, SKB, SKB_CACHE_BYTES, SKB_MAX_ALLOC,
                          SKBError, SKBQueue, skb_buf_cache_info, skb_buf_cache_shrink)


def test_fresh_skb_is_empty_with_all_room_at_the_tail():
    skb = SKB(1500)
    assert (len(skb), skb.headroom, skb.tailroom, skb.end) == (0, 0, 1500, 1500)
    assert skb.geometry() == (0, 0, 0, 1500)
    assert skb.ip_summed == CHECKSUM_NONE
    assert (skb.mac_header, skb.network_header, skb.transport_header) == (-1, -1, -1)


def test_reserve_put_push_pull_trim_move_the_pointers_as_linux_does():
    skb = SKB(200)
    skb.reserve(64)
    assert skb.geometry() == (0, 64, 64, 200)
    skb.put_data(b"payload")
    skb.push_data(b"TCPHDR")
    assert skb.tobytes() == b"TCPHDRpayload"
    assert (skb.headroom, skb.tailroom) == (58, 129)
    skb.pull(6)
    assert skb.tobytes() == b"payload"
    skb.trim(3)
    assert skb.tobytes() == b"pay"
    assert skb.headroom_bytes()[-6:] == b"TCPHDR"


def test_put_and_push_return_writable_views_of_the_new_bytes():
    skb = SKB(64)
    skb.reserve(16)
    skb.put(4)[:] = b"body"
    skb.push(2)[:] = b"hd"
    assert bytes(skb.data) == b"hdbody"


@pytest.mark.parametrize("op, arg", [
    ("put", 65), ("push", 1), ("pull", 1), ("trim", 1), ("reserve", 65),
    ("put", -1), ("push", -1), ("pull", -1), ("trim", -1), ("reserve", -1),
])
def test_out_of_bounds_operations_raise_and_change_nothing(op, arg):
    skb = SKB(64)
    with pytest.raises(SKBError):
        getattr(skb, op)(arg)
    assert skb.geometry() == (0, 0, 0, 64)


def test_reserve_only_on_an_empty_skb():
    skb = SKB(64)
    skb.put(1)
    with pytest.raises(SKBError, match="empty"):
        skb.reserve(8)


def test_sizes_out_of_range_are_value_errors():
    with pytest.raises(ValueError):
        SKB(-1)
    with pytest.raises(ValueError):
        SKB(SKB_MAX_ALLOC + 1)
    with pytest.raises(TypeError):
        SKB("big")


def test_clone_shares_data_and_writes_never_cross():
    skb = SKB.from_bytes(b"0123456789", headroom=32)
    clone = skb.clone()
    assert skb.cloned and clone.cloned
    assert bytes(clone.data) == b"0123456789"
    assert clone.data.readonly, "a shared buffer reads but must not be written"
    clone.push_data(b"HDR")           # takes a private copy first
    assert not clone.cloned
    assert skb.tobytes() == b"0123456789"
    assert clone.tobytes() == b"HDR0123456789"
    clone.data[3] = ord("X")
    assert skb.tobytes() == b"0123456789"
    assert not skb.cloned, "the original is alone again once the clone copied away"


def test_header_release_lets_one_clone_write_headers_in_place():
    skb = SKB.from_bytes(b"segment", headroom=40)
    skb.header_release()              # TCP's retransmit queue copy
    clone = skb.clone()
    assert not clone.header_cloned
    clone.push_data(b"IPTCP")
    assert clone.cloned, "headers were written in place, without a copy"
    assert skb.tobytes() == b"segment"
    second = skb.clone()              # a retransmission while the first is in flight
    assert second.header_cloned
    second.push_data(b"AGAIN")        # must copy: the first clone's header is live
    assert clone.tobytes() == b"IPTCPsegment"


def test_buffer_survives_the_original_and_clones_free_cleanly():
    skb = SKB.from_bytes(b"x" * 1000)
    clones = [skb.clone() for _ in range(50)]
    del skb
    gc.collect()
    assert all(c.tobytes() == b"x" * 1000 for c in clones)


def test_a_freed_large_buffer_serves_the_next_skb_of_its_size_as_a_fresh_one():
    # earlier tests may have filled the cache with other sizes: then this free
    # would overflow it (seen in CI after the GRO fuzz test's 260 KB buffers)
    skb_buf_cache_shrink()
    skb = SKB(65618)          # a TAP receive buffer
    skb.reserve(64)
    skb.put_data(b"\xab" * 1000)
    skb.ip_summed = CHECKSUM_PARTIAL
    before = skb_buf_cache_info()
    del skb
    again = SKB(66000)        # the same 4 KB size class: 64-68 KB
    after = skb_buf_cache_info()
    assert after["hits"] == before["hits"] + 1
    assert (len(again), again.headroom, again.tailroom) == (0, 0, 66000)
    assert again.ip_summed == CHECKSUM_NONE
    again.put_data(b"\x01" * 66000)
    assert again.tobytes() == b"\x01" * 66000


def test_the_large_buffer_cache_is_bounded_and_counts_what_it_gave_back():
    before = skb_buf_cache_info()
    n = SKB_CACHE_BYTES // 65536 + 50      # more 64 KB buffers than the cache may keep
    skbs = [SKB(65536) for _ in range(n)]
    del skbs
    after = skb_buf_cache_info()
    assert after["bytes"] <= SKB_CACHE_BYTES
    assert after["overflow"] >= before["overflow"] + 50
    tiny = [SKB(1500) for _ in range(100)]      # small buffers are malloc's alone
    del tiny
    assert skb_buf_cache_info()["buffers"] == after["buffers"]


def test_shrinking_the_cache_gives_every_waiting_buffer_back():
    skbs = [SKB(65536) for _ in range(8)]
    del skbs
    before = skb_buf_cache_info()
    assert before["buffers"] >= 8
    assert skb_buf_cache_shrink() == before["bytes"]
    after = skb_buf_cache_info()
    assert after["buffers"] == after["bytes"] == 0 and after["hits"] == before["hits"]
    SKB(65536)
    assert skb_buf_cache_info()["misses"] == before["misses"] + 1


def test_copy_moves_header_offsets_with_the_data():
    skb = SKB.from_bytes(b"E" * 20 + b"T" * 20, headroom=14)
    skb.reset_network_header()
    skb.transport_header = skb.data_offset + 20
    skb.set_partial(skb.data_offset + 20, 16)
    dup = skb.copy(headroom=100)
    assert dup.tobytes() == skb.tobytes()
    assert dup.network_header == 100 and dup.transport_header == 120
    assert dup.ip_summed == CHECKSUM_PARTIAL and dup.csum_start == 120
    assert not dup.cloned and not skb.cloned


def test_expanding_with_a_view_exported_raises_buffer_error():
    skb = SKB.from_bytes(b"abc")
    view = skb.data
    with pytest.raises(BufferError):
        skb.expand_head(16)
    view.release()
    skb.expand_head(16)
    assert skb.headroom == 16 and skb.tobytes() == b"abc"


def test_header_offsets_are_checked():
    skb = SKB(100)
    with pytest.raises(SKBError):
        skb.network_header = 101
    skb.network_header = 14
    skb.mac_header = 0
    assert skb.mac_len == 14


def test_queue_bounds_and_counts_drops():
    q = SKBQueue(limit=2, byte_limit=10)
    a, b, c = (SKB.from_bytes(b"12345") for _ in range(3))
    assert q.enqueue(a) and q.enqueue(b)
    assert not q.enqueue(c)
    assert (len(q), q.bytes, q.dropped) == (2, 10, 1)
    assert q.enqueue_evict(c) == [a]
    assert q.dropped == 2
    assert [q.dequeue(), q.dequeue(), q.dequeue()] == [b, c, None]
    assert q.bytes == 0


def test_evicting_for_an_skb_that_can_never_fit_keeps_the_queue():
    q = SKBQueue(limit=10, byte_limit=100)
    old = [SKB.from_bytes(b"x" * 50) for _ in range(2)]
    for skb in old:
        assert q.enqueue(skb)
    big = SKB.from_bytes(b"y" * 200)
    assert q.enqueue_evict(big) == [big]
    assert (list(q), q.dropped) == (old, 1)


@pytest.mark.parametrize("start, offset", [
    (0, 2**63 - 1), (2**63 - 1, 0), (-1, 0), (0, -1), (99, 0), (90, 9), (0, 65536),
])
def test_checksum_offsets_outside_the_buffer_are_refused(start, offset):
    skb = SKB(100)
    with pytest.raises((SKBError, OverflowError)):
        skb.set_partial(start, offset)
    with pytest.raises((SKBError, OverflowError)):
        skb.csum_offset = offset if start == 0 else 99
    assert skb.ip_summed == CHECKSUM_NONE


def test_partial_checksum_at_the_very_end_is_allowed():
    skb = SKB(100)
    skb.set_partial(90, 8)
    assert (skb.ip_summed, skb.csum_start, skb.csum_offset) == (CHECKSUM_PARTIAL, 90, 8)
