"""Random sequences of skb operations against a plain-Python model.

The model keeps each skb's bytes on its own, so it states the contract that
clones never see each other's writes; the C buffer must agree after every
step, and no sequence may crash (this also runs under ASan in CI).
"""
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pynet.skbuff import SKB, SKBError

sizes = st.integers(min_value=0, max_value=300)


class Model:
    def __init__(self, headroom, data, tailroom):
        self.headroom, self.data, self.tailroom = headroom, bytearray(data), tailroom
        self.released = False   # header_release(): this skb never pushes again


class SkbMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.pairs = []   # (SKB, Model)

    @rule(size=sizes, headroom=sizes)
    def alloc(self, size, headroom):
        skb = SKB(size)
        if headroom > size:
            try:
                skb.reserve(headroom)
                raise AssertionError("reserve past the end must fail")
            except SKBError:
                headroom = 0
        else:
            skb.reserve(headroom)
        self.pairs.append((skb, Model(headroom, b"", size - headroom)))

    def _pick(self, data):
        return data.draw(st.sampled_from(self.pairs))

    @precondition(lambda self: self.pairs)
    @rule(data=st.data(), payload=st.binary(max_size=200))
    def put_data(self, data, payload):
        skb, m = self._pick(data)
        if len(payload) > m.tailroom:
            try:
                skb.put_data(payload)
                raise AssertionError("put past tailroom must fail")
            except SKBError:
                return
        skb.put_data(payload)
        m.data += payload
        m.tailroom -= len(payload)

    @precondition(lambda self: self.pairs)
    @rule(data=st.data(), header=st.binary(max_size=120))
    def push_data(self, data, header):
        skb, m = self._pick(data)
        if m.released:
            return
        if len(header) > m.headroom:
            try:
                skb.push_data(header)
                raise AssertionError("push past headroom must fail")
            except SKBError:
                return
        skb.push_data(header)
        m.data[:0] = header
        m.headroom -= len(header)

    @precondition(lambda self: self.pairs)
    @rule(data=st.data(), n=sizes)
    def pull(self, data, n):
        skb, m = self._pick(data)
        if n > len(m.data):
            try:
                skb.pull(n)
                raise AssertionError("pull past len must fail")
            except SKBError:
                return
        skb.pull(n)
        del m.data[:n]
        m.headroom += n

    @precondition(lambda self: self.pairs)
    @rule(data=st.data(), n=sizes)
    def trim(self, data, n):
        skb, m = self._pick(data)
        if n > len(m.data):
            try:
                skb.trim(n)
                raise AssertionError("trim past len must fail")
            except SKBError:
                return
        skb.trim(n)
        m.tailroom += len(m.data) - n
        del m.data[n:]

    @precondition(lambda self: self.pairs and len(self.pairs) < 12)
    @rule(data=st.data(), release=st.booleans())
    def clone(self, data, release):
        skb, m = self._pick(data)
        if release:
            skb.header_release()   # the original will not touch its header area again
            m.released = True
        self.pairs.append((skb.clone(), Model(skb.headroom, m.data, m.tailroom)))

    @precondition(lambda self: self.pairs and len(self.pairs) < 12)
    @rule(data=st.data(), headroom=sizes, tailroom=sizes)
    def copy(self, data, headroom, tailroom):
        skb, m = self._pick(data)
        self.pairs.append((skb.copy(headroom=headroom, tailroom=tailroom),
                           Model(headroom, m.data, tailroom)))

    @precondition(lambda self: self.pairs)
    @rule(data=st.data(), value=st.integers(0, 255))
    def write_private(self, data, value):
        skb, m = self._pick(data)
        if not m.data:
            return
        skb.unshare()
        view = skb.data
        view[0] = value
        view.release()
        m.data[0] = value

    @precondition(lambda self: self.pairs)
    @rule(data=st.data(), nhead=sizes, ntail=sizes)
    def expand_head(self, data, nhead, ntail):
        skb, m = self._pick(data)
        skb.expand_head(nhead, ntail)
        m.headroom += nhead
        m.tailroom += ntail

    @precondition(lambda self: self.pairs)
    @rule(data=st.data())
    def drop(self, data):
        self.pairs.remove(self._pick(data))

    @invariant()
    def agrees_with_model(self):
        for skb, m in self.pairs:
            assert skb.tobytes() == bytes(m.data)
            assert len(skb) == len(m.data)
            assert (skb.headroom, skb.tailroom) == (m.headroom, m.tailroom)


SkbMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSkbModel = SkbMachine.TestCase
