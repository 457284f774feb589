"""The stdlib-shaped socket API over a pynet stack (Linux's net/socket.c).

    sock = stack.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect(("198.18.0.1", 80)); sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")

`socket` is the generic layer: it checks arguments as CPython's
socketmodule does, takes the stack lock, calls the protocol's
non-blocking op (pynet.af_inet's inet_stream_ops / inet_dgram_ops) and,
when the op would block, waits on the socket's condition variable until a
protocol callback (sk_data_ready, sk_write_space, sk_state_change,
sk_error_report) says something changed, or the timeout passes: timeouts
and blocking live here only, as in Linux's sk_wait_event. Errors are
OSError subclasses with the errno and strerror the kernel gives.

fileno() is a real descriptor (pynet.pollfd.PollFd), made on first use,
kept readable and writable exactly when the socket is.
"""
import contextlib
import errno
import io
import math
import os
import socket as _socket
import threading

from pynet.af_inet import SO_BUSY_POLL, inet_dgram_ops, inet_stream_ops  # noqa: F401 (API)
from pynet.pollfd import PollFd
from pynet.runner import clock, runner_of
from pynet.sock import TCP_ESTABLISHED
from pynet.wire.ipv4 import ip_aton, ip_ntoa

AF_INET = _socket.AF_INET
SOCK_STREAM, SOCK_DGRAM = _socket.SOCK_STREAM, _socket.SOCK_DGRAM
_TYPE_FLAGS = _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC
MSG_PEEK, MSG_DONTWAIT = _socket.MSG_PEEK, _socket.MSG_DONTWAIT
# plain ints for the per-call test: `&` on the enum members builds a MsgFlag each time
_PEEK, _DONTWAIT = int(MSG_PEEK), int(MSG_DONTWAIT)
MSG_FASTOPEN = 0x20000000      # Linux's; the stdlib does not export it
SS_UNCONNECTED, SS_CONNECTING, SS_CONNECTED = 1, 2, 3      # struct socket's state
_GLOBAL_DEFAULT_TIMEOUT = _socket._GLOBAL_DEFAULT_TIMEOUT
_INT_MAX = (1 << 31) - 1
SEND_BUSY_POLL = 50e-6         # seconds a sender waiting for space polls for ACKs first


def _oserror(err):
    """The kernel's error for errno err: the OSError subclass CPython raises, with strerror."""
    return OSError(err, os.strerror(err))


def _int_arg(value):
    """An int argument as CPython's 'i' format reads it, with its errors."""
    if type(value) is int and -_INT_MAX - 1 <= value <= _INT_MAX:
        return value                       # the common case, every send and recv
    if not hasattr(value, "__index__"):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    v = value.__index__()
    if v > _INT_MAX:
        raise OverflowError("signed integer is greater than maximum")
    if v < -_INT_MAX - 1:
        raise OverflowError("signed integer is less than minimum")
    return v


def _bytes_like(data):
    try:
        return memoryview(data).cast("B")
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'") from None


class socket:
    """An AF_INET socket on a pynet stack with the interface of socket.socket."""

    def __init__(self, stack, family=AF_INET, type=SOCK_STREAM, proto=0):
        family, type, proto = (_int_arg(x) for x in (family, type, proto))
        if family != AF_INET:
            raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
        kind = type & ~_TYPE_FLAGS
        ops = {SOCK_STREAM: inet_stream_ops, SOCK_DGRAM: inet_dgram_ops}.get(kind)
        if ops is None:
            raise _oserror(errno.EINVAL if kind not in (_socket.SOCK_RAW, _socket.SOCK_SEQPACKET)
                           else errno.ESOCKTNOSUPPORT)
        if proto not in (0, ops.protocol):
            raise _oserror(errno.EPROTONOSUPPORT)
        self._stack = stack
        self._runner = runner_of(stack)
        self._lock = self._runner.lock
        self._cond = threading.Condition(self._lock)
        self._ops = ops
        self._family, self._type, self._proto = family, kind, proto
        self._pollfd = None
        self._closed = False
        self._io_refs = 0
        self._sock_state = SS_UNCONNECTED
        if type & _socket.SOCK_NONBLOCK:
            self._timeout = 0.0
        else:
            self._timeout = _socket.getdefaulttimeout()
        with self._lock:
            self._sk = ops.create(stack)
            self._graft(self._sk)

    def _graft(self, sk):
        """sock_graft: the protocol's callbacks now wake this socket's waiters."""
        sk.sk_data_ready = sk.sk_write_space = sk.sk_state_change = sk.sk_error_report = \
            self._wakeup

    def _wakeup(self, sk):
        # Waiters are woken when the lock holder's work is done (Runner.flush_dirty), once
        # for a whole poll batch: woken per skb, a reader would only block on the lock the
        # runner still holds, and cost a GIL hand-off each time.
        self._runner.dirty.add(self)

    def _update_pollfd(self):
        if self._pollfd is not None and self._sk is not None:
            self._pollfd.set(*self._ops.poll(self._sk))

    # -- attributes ----------------------------------------------------------------
    family = property(lambda self: _socket.AddressFamily(self._family))
    type = property(lambda self: _socket.SocketKind(self._type))
    proto = property(lambda self: self._proto)

    def __repr__(self):
        fd = self._pollfd.fileno() if self._pollfd is not None else -1    # repr makes no descriptor
        s = (f"<pynet.socket.socket{' [closed]' if self._closed else ''} fd={fd}, "
             f"family={self._family}, type={self._type}, proto={self._proto}")
        if not self._closed:
            try:
                s += f", laddr={self.getsockname()}"
                s += f", raddr={self.getpeername()}"
            except OSError:
                pass
        return s + ">"

    def __getstate__(self):
        raise TypeError(f"cannot pickle {self.__class__.__name__!r} object")

    def __enter__(self):
        return self

    def __exit__(self, *args):
        if not self._closed:
            self.close()

    def fileno(self):
        """A real descriptor, readable/writable exactly when this socket is (-1 once closed)."""
        with self._lock:
            if self._sk is None:
                return -1
            if self._pollfd is None:
                self._pollfd = PollFd()
                self._update_pollfd()
            return self._pollfd.fileno()

    # -- timeouts --------------------------------------------------------------------
    def settimeout(self, value):
        if value is None:
            self._timeout = None
            return
        if not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an "
                                "integer") from None
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("Invalid value NaN (not a number)")
        if value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = float(value)

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        self._timeout = None if flag else 0.0

    def getblocking(self):
        return self._timeout != 0.0

    # -- the wait (sk_wait_event) -----------------------------------------------------------
    def _deadline(self):
        return None if not self._timeout else clock() + self._timeout

    def _wait(self, ready, deadline):
        """Sleep (the stack lock released) until ready() or the deadline: TimeoutError.
        The first wait starts the stack's runner; once the stack is stopped a wait
        fails with ENETDOWN (nothing would ever make it ready). The call drives
        the stacks itself unless another one does (Runner.poll_wait); then it
        sleeps on its condition and the poller or the runner wakes it."""
        runner = self._runner
        if not runner.running:
            if runner.stopped:
                raise _oserror(errno.ENETDOWN)
            runner.start()
        if self._sk is None:
            spin = 0
        elif ready == self._writable:
            # Send space comes back with ACKs the peer's stack sent at once and that
            # usually sit on the device already: take them before sleeping.
            spin = SEND_BUSY_POLL
        else:
            spin = self._sk.sk_ll_usec * 1e-6      # SO_BUSY_POLL, as Linux's busy_read
        if runner.poll_wait(ready, deadline, spin):
            return
        runner.waiters.add(self._cond)
        with runner.sleeping():
            while not ready():
                if runner.stopped:
                    raise _oserror(errno.ENETDOWN)
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - clock()
                    if left <= 0:
                        raise TimeoutError("timed out")
                    self._cond.wait(left)

    def _readable(self):
        return self._sk is None or self._ops.poll(self._sk)[0]

    def _writable(self):
        return self._sk is None or self._ops.poll(self._sk)[1]

    def _call(self, op, ready, nonblock=False):
        """Run op() under the lock; while it would block, wait for ready().

        BlockingIOError for a non-blocking socket; TimeoutError past the
        timeout; other OSErrors with the kernel's message.
        """
        deadline = self._deadline()
        with self._lock:
            try:
                while True:
                    self._check_closed()
                    try:
                        return op()
                    except BlockingIOError:
                        if nonblock or self._timeout == 0.0:
                            raise _oserror(errno.EAGAIN) from None
                    except OSError as exc:
                        if exc.errno is None:
                            raise
                        raise _oserror(exc.errno) from None
                    self._wait(ready, deadline)
            finally:
                self._after()

    def _after(self):
        """A call changed the socket: wake whom it woke, bring its descriptor up to
        date, and let the runner see timers the call armed."""
        self._runner.flush_dirty()
        self._update_pollfd()
        self._runner.kick()

    def _check_closed(self):
        if self._sk is None:        # close() with makefile()s open keeps the socket going
            raise _oserror(errno.EBADF)

    # -- addresses ----------------------------------------------------------------------------
    def _addr(self, address, caller):
        """getsockaddrarg for AF_INET: (host, port) -> (int, int), CPython's errors."""
        if not isinstance(address, tuple):
            raise TypeError(f"{caller}(): AF_INET address must be tuple, not "
                            f"{type(address).__name__}")
        if len(address) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
        host, port = address
        if not isinstance(host, (str, bytes, bytearray)):
            raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")
        port = _int_arg(port)
        if not 0 <= port <= 0xFFFF:
            raise OverflowError(f"{caller}(): port must be 0-65535.")
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("idna")
        return resolve(host), port

    def getsockname(self):
        with self._lock:
            self._check_closed()
            addr, port = self._ops.getname(self._sk, False)
        return ip_ntoa(addr), port

    def getpeername(self):
        with self._lock:
            self._check_closed()
            try:
                addr, port = self._ops.getname(self._sk, True)
            except OSError as exc:
                raise _oserror(exc.errno) from None
        return ip_ntoa(addr), port

    def bind(self, address):
        addr = self._addr(address, "bind")
        self._call(lambda: self._ops.bind(self._sk, *addr), None)

    def listen(self, backlog=min(_socket.SOMAXCONN, 128)):
        backlog = _int_arg(backlog)
        self._call(lambda: self._ops.listen(self._sk, backlog), None)

    def accept(self):
        """(connection, address); the new socket blocks unless a default timeout is set."""
        sk = self._call(lambda: self._ops.accept(self._sk), self._readable)
        conn = socket.__new__(socket)
        conn.__dict__.update(_stack=self._stack, _runner=self._runner, _lock=self._lock,
                             _cond=threading.Condition(self._lock), _ops=self._ops,
                             _family=self._family, _type=self._type, _proto=self._proto,
                             _pollfd=None, _closed=False, _io_refs=0, _sock_state=SS_CONNECTED,
                             _timeout=_socket.getdefaulttimeout(), _sk=sk)
        with self._lock:
            conn._graft(sk)
            sk.linger = (0, 0)
            sk.rcv_saddr = sk.saddr
        return conn, (ip_ntoa(sk.daddr), sk.dport)

    # -- connect (__inet_stream_connect) ---------------------------------------------------------
    def _connect(self, address):
        """0 or an errno; TimeoutError when the timeout passes while connecting."""
        daddr, dport = self._addr(address, "connect")
        ops, sk = self._ops, self._sk
        deadline = self._deadline()
        with self._lock:
            self._check_closed()
            try:
                if self._sock_state == SS_CONNECTED and ops is inet_stream_ops:
                    return errno.EISCONN
                if self._sock_state == SS_CONNECTING:
                    err = errno.EALREADY
                else:
                    try:
                        ops.connect(sk, daddr, dport, clock())
                    except OSError as exc:
                        return exc.errno
                    self._sock_state = SS_CONNECTING
                    err = errno.EINPROGRESS
                if ops.connecting(sk):
                    if self._timeout == 0.0:
                        return err
                    self._wait(lambda: not ops.connecting(sk), deadline)
                err = ops.connect_result(sk)
                self._sock_state = SS_UNCONNECTED if err else SS_CONNECTED
                return err
            finally:
                self._after()

    def connect(self, address):
        err = self._connect(address)
        if err:
            raise _oserror(err)

    def connect_ex(self, address):
        try:
            return self._connect(address)
        except TimeoutError:
            return errno.EWOULDBLOCK

    # -- data -----------------------------------------------------------------------------------
    def _flags(self, flags):
        flags = _int_arg(flags)
        return bool(flags & _PEEK), bool(flags & _DONTWAIT)

    def send(self, data, flags=0):
        view = _bytes_like(data)
        _, dontwait = self._flags(flags)
        if self._ops is inet_dgram_ops:
            return self._call(lambda: self._dgram_send(view, 0, 0), self._writable, dontwait)
        if self._timeout is None and not dontwait:
            # a blocking stream send returns once everything is queued (sk_stream_wait_memory)
            return self._sendall(view, None, dontwait)
        return self._call(lambda: self._ops.sendmsg(self._sk, view, clock()), self._writable,
                          dontwait)

    def _dgram_send(self, view, daddr, dport):
        if not daddr and self._sk.state != TCP_ESTABLISHED:     # not connected
            raise OSError(errno.EDESTADDRREQ, "")
        return self._ops.sendmsg(self._sk, view, clock(), daddr, dport)

    def _sendall(self, view, deadline, dontwait=False):
        sent, total = 0, len(view)
        with self._lock:
            try:
                while True:
                    self._check_closed()
                    try:
                        sent += self._ops.sendmsg(self._sk, view[sent:], clock())
                        if sent >= total:
                            return sent
                    except BlockingIOError:
                        if dontwait or self._timeout == 0.0:
                            if sent:
                                return sent
                            raise _oserror(errno.EAGAIN) from None
                    except OSError as exc:
                        raise _oserror(exc.errno) from None
                    self._wait(self._writable, deadline)
            finally:
                self._after()

    def sendall(self, data, flags=0):
        view = _bytes_like(data)
        _, dontwait = self._flags(flags)
        if self._ops is inet_dgram_ops:
            self.send(view, flags)
            return None
        sent = self._sendall(view, self._deadline(), dontwait)
        if sent < len(view):
            raise _oserror(errno.EAGAIN)
        return None

    def sendto(self, data, flags_or_addr, addr=None):
        if addr is None:
            address, flags = flags_or_addr, 0
        else:
            address, flags = addr, flags_or_addr
        view = _bytes_like(data)
        _, dontwait = self._flags(flags)
        daddr, dport = self._addr(address, "sendto")
        if self._ops is inet_stream_ops:
            if _int_arg(flags) & MSG_FASTOPEN:
                return self._sendto_fastopen(view, flags, daddr, dport, dontwait)
            return self.send(view, flags)      # TCP ignores the address once connected
        return self._call(lambda: self._dgram_send(view, daddr, dport),
                          self._writable, dontwait)

    def _sendto_fastopen(self, view, flags, daddr, dport, dontwait):
        """tcp_sendmsg_fastopen: connect with as much data as the SYN takes.
        Non-blocking: those bytes, or EINPROGRESS when the SYN only asked
        for a cookie. Blocking: wait for the connection, then send the rest."""
        ops, sk = self._ops, self._sk
        deadline = self._deadline()
        with self._lock:
            self._check_closed()
            try:
                if self._sock_state == SS_CONNECTED:
                    raise _oserror(errno.EISCONN)
                if self._sock_state == SS_CONNECTING:
                    # __inet_stream_connect: a finished connect is taken, then a plain send
                    if ops.connecting(sk):
                        raise _oserror(errno.EALREADY)
                    err = ops.connect_result(sk)
                    self._sock_state = SS_UNCONNECTED if err else SS_CONNECTED
                    if err:
                        raise _oserror(err)
                    return self._sendall(view, deadline, dontwait)
                try:
                    n = ops.sendmsg_fastopen(sk, view, clock(), daddr, dport)
                except OSError as exc:
                    raise _oserror(exc.errno) from None
                self._sock_state = SS_CONNECTING
                if dontwait or self._timeout == 0.0:
                    if not n:
                        raise _oserror(errno.EINPROGRESS)
                    return n
                self._wait(lambda: not ops.connecting(sk), deadline)
                err = ops.connect_result(sk)
                self._sock_state = SS_UNCONNECTED if err else SS_CONNECTED
                if err:
                    raise _oserror(err)
            finally:
                self._after()
        return n + (self._sendall(view[n:], deadline) if n < len(view) else 0)

    def recv(self, bufsize, flags=0):
        bufsize = _int_arg(bufsize)
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        return self._recv(bufsize, flags)[0]

    def _recv(self, n, flags):
        peek, dontwait = self._flags(flags)
        if self._ops is inet_dgram_ops:
            data, (addr, port) = self._call(lambda: self._ops.recvfrom(self._sk, n, peek),
                                            self._readable, dontwait)
            return data, (ip_ntoa(addr), port)
        data = self._call(lambda: self._ops.recvmsg(self._sk, n, peek, clock()),
                          self._readable, dontwait)
        return data, None

    def recvfrom(self, bufsize, flags=0):
        bufsize = _int_arg(bufsize)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        return self._recv(bufsize, flags)

    def _into(self, buffer, nbytes, what, toobig):
        try:
            view = memoryview(buffer)
            if view.readonly:
                raise TypeError
        except TypeError:
            raise TypeError(f"{what}() argument 1 must be read-write bytes-like object, not "
                            f"{type(buffer).__name__}") from None
        view = view.cast("B")
        nbytes = _int_arg(nbytes)
        if nbytes < 0:
            raise ValueError(f"negative buffersize in {what}")
        if nbytes == 0:
            nbytes = len(view)
        elif nbytes > len(view):
            raise ValueError(toobig)
        return view, nbytes

    def recv_into(self, buffer, nbytes=0, flags=0):
        view, nbytes = self._into(buffer, nbytes, "recv_into", "buffer too small for requested bytes")
        peek, dontwait = self._flags(flags)
        if self._ops is inet_stream_ops and not peek:
            # straight from the skbs into the caller's buffer: one copy
            return self._call(lambda: self._ops.recvmsg_into(self._sk, view[:nbytes], clock()),
                              self._readable, dontwait)
        data, _ = self._recv(nbytes, flags)
        view[:len(data)] = data
        return len(data)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        view, nbytes = self._into(buffer, nbytes, "recvfrom_into",
                                  "nbytes is greater than the length of the buffer")
        data, addr = self._recv(nbytes, flags)
        view[:len(data)] = data
        return len(data), addr

    # -- shutdown and close ------------------------------------------------------------------
    def shutdown(self, how):
        how = _int_arg(how)
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise _oserror(errno.EINVAL)

        def op():
            err = self._ops.shutdown(self._sk, how + 1, clock())
            self._cond.notify_all()
            if err:
                raise OSError(err, "")
        self._call(op, None)

    def close(self):
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self):
        with self._lock:
            sk = self._sk
            if sk is None:
                return
            self._sk = None
            self._closed = True
            self._cond.notify_all()        # other threads' waits end with EBADF
            linger = self._ops.release(sk, clock())
            if linger and self._timeout != 0.0:
                # SO_LINGER: wait (sk_stream_wait_close) until our FIN is acknowledged
                try:
                    self._wait(lambda: not self._ops.closing(sk), clock() + linger)
                except TimeoutError:
                    pass
            sk.sk_data_ready = sk.sk_write_space = sk.sk_state_change = sk.sk_error_report = \
                _noop
            self._runner.dirty.discard(self)
            self._runner.flush_dirty()         # whom the release woke (a peer on a pipe)
            if self._pollfd is not None:
                self._pollfd.close()
                self._pollfd = None
            self._runner.kick()

    def detach(self):
        raise _oserror(errno.EOPNOTSUPP)

    def _decref_socketios(self):
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    # -- options ---------------------------------------------------------------------------------
    def setsockopt(self, level, optname, value, optlen=None):
        level, optname = _int_arg(level), _int_arg(optname)
        if value is None:
            if optlen is None:
                raise TypeError("setsockopt() takes exactly 4 arguments (3 given)")
            value = bytes(_int_arg(optlen))
        elif not isinstance(value, int):
            value = bytes(_bytes_like(value))
        else:
            value = _int_arg(value)
        self._call(lambda: self._ops.setsockopt(self._sk, level, optname, value, clock()), None)

    def getsockopt(self, level, optname, buflen=None):
        level, optname = _int_arg(level), _int_arg(optname)
        if buflen is not None:
            buflen = _int_arg(buflen) or None        # 0: an int, as without buflen
        if buflen is not None:
            if buflen < 0 or buflen > 1024:
                raise OSError("getsockopt buflen out of range")
        value = self._call(lambda: self._ops.getsockopt(self._sk, level, optname), None)
        if isinstance(value, int):
            if buflen is None:
                return value
            return value.to_bytes(4, "little", signed=True)[:buflen]
        if buflen is None:
            return int.from_bytes(value[:4], "little", signed=True)
        return value[:buflen]

    # -- makefile (as socket.socket.makefile) ---------------------------------------------------------
    def makefile(self, mode="r", buffering=None, *, encoding=None, errors=None, newline=None):
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        assert reading or writing
        binary = "b" in mode
        rawmode = ("r" if reading else "") + ("w" if writing else "")
        raw = _socket.SocketIO(self, rawmode)
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        encoding = io.text_encoding(encoding)
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode
        return text


def _noop(sk):
    pass


# -- names ------------------------------------------------------------------------------------------
_hosts = {}          # name -> address, set by patch(stack, hosts=...)


def resolve(host):
    """An IPv4 literal, "" (any) or a name from patch()'s hosts map -> int.
    Nothing is looked up in DNS: unknown names raise gaierror(EAI_NONAME)."""
    if host in ("", "0.0.0.0"):
        return 0
    if host == "<broadcast>":
        return 0xFFFFFFFF
    host = _hosts.get(host, host)
    try:
        return ip_aton(host)
    except (ValueError, OSError):
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known") from None


def create_connection(stack, address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """socket.create_connection over `stack`."""
    host, port = address
    sock = socket(stack, AF_INET, SOCK_STREAM)
    try:
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect((host, port))
        return sock
    except BaseException:
        sock.close()
        raise


def create_server(stack, address, *, family=AF_INET, backlog=None, reuse_port=False,
                  dualstack_ipv6=False):
    """socket.create_server over `stack` (IPv4 only)."""
    if family != AF_INET or dualstack_ipv6:
        raise ValueError("pynet supports AF_INET only")
    if reuse_port:
        raise ValueError("SO_REUSEPORT not supported on this platform")
    sock = socket(stack, AF_INET, SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


@contextlib.contextmanager
def patch(stack, hosts=None):
    """Route unmodified stdlib code through `stack`: socket.socket for AF_INET,
    socket.create_connection and socket.getaddrinfo (IP literals and the
    `hosts` map {name: "198.18.0.1"}; other names fail, nothing goes to DNS).
    Everything is restored on exit."""
    saved = {name: getattr(_socket, name) for name in ("socket", "create_connection", "getaddrinfo")}
    stdlib_socket = saved["socket"]

    class _instancecheck(type):
        # isinstance(s, socket.socket) holds for pynet sockets too while patched
        def __instancecheck__(cls, obj):
            return isinstance(obj, (stdlib_socket, socket))

    class _socket_type(stdlib_socket, metaclass=_instancecheck):
        def __new__(cls, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None and family in (-1, AF_INET):
                return socket(stack, AF_INET, SOCK_STREAM if type == -1 else type,
                              0 if proto == -1 else proto)
            return stdlib_socket(family, type, proto, fileno)

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if family not in (0, AF_INET):
            raise _socket.gaierror(_socket.EAI_FAMILY, "ai_family not supported")
        if isinstance(host, bytes):
            host = host.decode("idna")
        addr = ip_ntoa(resolve("" if host is None else host))
        if isinstance(port, str):
            port = int(port) if port.isdigit() else _socket.getservbyname(port)
        kinds = [type] if type else [SOCK_STREAM, SOCK_DGRAM, _socket.SOCK_RAW]
        protos = {SOCK_STREAM: _socket.IPPROTO_TCP, SOCK_DGRAM: _socket.IPPROTO_UDP,
                  _socket.SOCK_RAW: 0}
        return [(_socket.AF_INET, _socket.SocketKind(k), proto or protos.get(k, 0), "",
                 (addr, port or 0)) for k in kinds]

    old_hosts = dict(_hosts)
    _hosts.update(hosts or {})
    _socket.socket = _socket_type
    _socket.create_connection = lambda address, timeout=_GLOBAL_DEFAULT_TIMEOUT, \
        source_address=None, **kw: create_connection(stack, address, timeout, source_address)
    _socket.getaddrinfo = getaddrinfo
    try:
        yield stack
    finally:
        for name, value in saved.items():
            setattr(_socket, name, value)
        _hosts.clear()
        _hosts.update(old_hosts)
