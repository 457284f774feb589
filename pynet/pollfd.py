"""A real file descriptor whose poll state mirrors a pynet socket's.

select, selectors and asyncio wait on kernel descriptors, and a pynet socket
lives in user space. PollFd is one end of an AF_UNIX socketpair that the
stack keeps readable exactly while the pynet socket has something to read
(data, a connection to accept, an error, EOF) and writable exactly while it
can take more data: readable by parking a byte in its receive queue,
unwritable by filling its (small) send queue. Each change of state costs one
or two system calls; nothing is done while the state stays the same.
"""
import socket as _socket

_FILL = b"\0" * 4096


class PollFd:
    """fileno() for select(); set(readable, writable) to move its state."""

    __slots__ = ("_user", "_peer", "readable", "writable")

    def __init__(self):
        self._user, self._peer = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        for s in (self._user, self._peer):
            s.setblocking(False)
        # Small buffers: making the user end unwritable must not cost much copying.
        self._user.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, 1)
        self._peer.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 1)
        self.readable = False
        self.writable = True

    def fileno(self):
        return self._user.fileno()

    def set(self, readable, writable):
        if readable != self.readable:
            if readable:
                self._peer.send(b"r")
            else:
                self._drain(self._user)
            self.readable = readable
        if writable != self.writable:
            if writable:
                self._drain(self._peer)
            else:
                try:
                    while True:
                        self._user.send(_FILL)
                except BlockingIOError:
                    pass
            self.writable = writable

    @staticmethod
    def _drain(sock):
        try:
            while sock.recv(65536):
                pass
        except BlockingIOError:
            pass

    def close(self):
        self._user.close()
        self._peer.close()
