"""The building blocks of the wire views: a buffer holder and field descriptors.

Every header field is declared once, as a class attribute naming its byte
offset and size (and bit position for sub-byte fields); the view's properties,
its Repr's parse and its Repr's emit all go through that one declaration.
"""
import operator

from pynet.wire import WireError


def as_bytes_view(buf):
    """A flat unsigned-byte memoryview of any contiguous buffer (bytes, bytearray, SKB...)."""
    mv = memoryview(buf)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


class View:
    """A checked view over a buffer: subclasses validate lengths in _check()."""
    __slots__ = ("buf",)

    def __init__(self, buf):
        self.buf = as_bytes_view(buf)
        self._check()

    def _check(self):
        raise NotImplementedError

    @classmethod
    def unchecked(cls, buf):
        """A view without the length checks, for emitting into a buffer being built."""
        v = cls.__new__(cls)
        v.buf = as_bytes_view(buf)
        return v

    def __len__(self):
        return len(self.buf)


def need(buf, n, what):
    """Raise WireError unless buf holds at least n bytes."""
    if len(buf) < n:
        raise WireError(f"{what}: {len(buf)} bytes, need {n}")


class Field:
    """An unsigned big-endian field of `size` bytes at `start`, or `width` bits of it at `shift`."""
    __slots__ = ("start", "end", "shift", "mask", "whole", "name")

    def __init__(self, start, size, shift=0, width=None):
        self.start = start
        self.end = start + size
        self.shift = shift
        self.whole = width is None
        self.mask = (1 << (8 * size if width is None else width)) - 1
        self.name = None

    def __set_name__(self, owner, name):
        self.name = f"{owner.__name__}.{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        v = int.from_bytes(obj.buf[self.start:self.end], "big")
        return v if self.whole else (v >> self.shift) & self.mask

    def __set__(self, obj, value):
        value = operator.index(value)
        if not 0 <= value <= self.mask:
            raise WireError(f"{self.name}: {value} out of range 0..{self.mask}")
        if not self.whole:
            old = int.from_bytes(obj.buf[self.start:self.end], "big")
            value = (old & ~(self.mask << self.shift)) | (value << self.shift)
        obj.buf[self.start:self.end] = value.to_bytes(self.end - self.start, "big")


class Flag(Field):
    """One bit, read as a bool."""
    __slots__ = ()

    def __init__(self, start, size, bit):
        super().__init__(start, size, shift=bit, width=1)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return bool(super().__get__(obj, owner))

    def __set__(self, obj, value):
        super().__set__(obj, 1 if value else 0)


class Octets:
    """A fixed-size run of bytes (a MAC address), read as bytes."""
    __slots__ = ("start", "end", "name")

    def __init__(self, start, size):
        self.start = start
        self.end = start + size
        self.name = None

    def __set_name__(self, owner, name):
        self.name = f"{owner.__name__}.{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return bytes(obj.buf[self.start:self.end])

    def __set__(self, obj, value):
        if len(value) != self.end - self.start:
            raise WireError(f"{self.name}: {len(value)} bytes, need {self.end - self.start}")
        obj.buf[self.start:self.end] = value
