"""The runner: a thread that drives stacks on real time, and their lock.

The stack is sans-IO; socket calls come from any thread. One lock per
runner (so per stack; stacks joined by an in-memory pipe share one runner,
because a pipe hands frames straight to its peer's queues) serialises
everything that touches protocol state: the runner holds it while it polls,
a socket call holds it while it runs the protocol's non-blocking op, and a
blocking call waits on its socket's condition variable over the same lock
(Linux's sk_wait_event on sk_sleep(sk)), so waiting releases the stack.

The thread waits on the devices' descriptors, an eventfd that socket calls
poke when they armed an earlier timer or left frames queued, and the next
timer; then it polls, and flushes the poll state (PollFd) of the sockets
whose callbacks fired.

A socket call about to sleep first polls the devices itself for a while
(busy_loop: Linux's busy polling, SO_BUSY_POLL / net.core.busy_read): the
ACK that frees send space or the reply a request waits for is often
already queued on the device, and taking it in the caller's thread saves
handing the stack lock and the GIL to the runner and back. The runner
thread stands aside meanwhile.
"""
import os
import resource
import selectors
import threading
import weakref
import time

from pynet.stack import NAPI_POLL_WEIGHT

clock = time.monotonic
_IDLE = 1.0        # longest sleep: picks up devices added while running
BUSY_LOOP_MAX = 0.001   # longest a socket call polls the devices before it sleeps


class Runner:
    """Drives `stacks` (one or more sharing this lock) from a daemon thread."""

    def __init__(self, *stacks):
        self.stacks = stacks
        self.lock = threading.RLock()
        self.dirty = set()          # sockets whose callbacks fired: waiters to wake, PollFd
        self.wake_at = 0.0          # when the thread will look at the timers next
        self._efd = None
        self._thread = None
        self._stopping = False
        self.stopped = False        # stop() was called: blocking socket calls fail, not restart it
        self.waiters = weakref.WeakSet()   # conditions of sockets that blocked on this runner
        self.busy_pollers = 0       # socket calls polling the devices themselves (busy_loop)
        from pynet.tcp.tcp_ipv4 import tcp_v4_init
        for stack in stacks:
            stack._runner = self
            tcp_v4_init(stack)      # a host answers TCP (with RSTs) before it has a socket

    @property
    def running(self):
        return self._thread is not None

    def start(self):
        if self._thread is not None:
            return self
        raise_nofile_limit()
        self._stopping = self.stopped = False
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="pynet-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        thread = self._thread
        if thread is None:
            return
        # stopped first: a blocking call that finds the thread gone before this
        # was set would start a new one
        self.stopped = self._stopping = True
        os.eventfd_write(self._efd, 1)
        thread.join()
        os.close(self._efd)
        self._thread = self._efd = None
        with self.lock:
            for cond in self.waiters:
                cond.notify_all()

    def kick(self):
        """A socket call armed a timer or queued frames: make sure the
        thread looks before it would have (caller holds the lock)."""
        if self._efd is None:
            return
        nxt = None
        queued = False
        for s in self.stacks:          # plain loops: this runs after every socket call
            t = s.next_timer()
            if t is not None and (nxt is None or t < nxt):
                nxt = t
            for dev in s.devices.values():
                if dev.qdisc:
                    queued = True
        if queued or (nxt is not None and nxt < self.wake_at):
            self.wake_at = nxt if nxt is not None else 0.0
            os.eventfd_write(self._efd, 1)

    def flush_dirty(self):
        """Wake the sockets whose callbacks fired and update their PollFds."""
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for sock in dirty:
            sock._cond.notify_all()
            sock._update_pollfd()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self._efd, selectors.EVENT_READ)
        watched = {}
        aside = selectors.DefaultSelector()     # only the eventfd: while calls busy-poll
        aside.register(self._efd, selectors.EVENT_READ)
        try:
            while not self._stopping:
                if self.busy_pollers:
                    # a socket call is polling the devices; it wakes us when it stops
                    if aside.select(_IDLE):
                        self._drain_eventfd()
                    continue
                with self.lock:
                    now = clock()
                    busy = False
                    for stack in self.stacks:
                        # a full budget on some device: frames are waiting, poll again at once
                        busy |= stack.poll(now) >= NAPI_POLL_WEIGHT
                    self.flush_dirty()
                    nxt = min((t for t in (s.next_timer() for s in self.stacks) if t is not None),
                              default=None)
                    wait = _IDLE if nxt is None else min(_IDLE, max(nxt - now, 0.0))
                    if busy or any(dev.qdisc for s in self.stacks for dev in s.devices.values()):
                        wait = 0.0
                    self.wake_at = now + wait
                    fds = {}
                    for stack in self.stacks:
                        for dev in stack.devices.values():
                            try:
                                fds[dev.fileno()] = dev
                            except (ValueError, NotImplementedError, OSError):
                                pass
                for fd in watched.keys() - fds.keys():
                    sel.unregister(fd)
                for fd in fds.keys() - watched.keys():
                    sel.register(fd, selectors.EVENT_READ)
                watched = fds
                for key, _ in sel.select(wait):
                    if key.fd == self._efd:
                        self._drain_eventfd()
        finally:
            sel.close()
            aside.close()

    def _drain_eventfd(self):
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass

    def busy_loop(self, ready, spin, deadline=None):
        """sk_busy_loop: poll the stacks from the calling thread (which holds the lock)
        until ready(), the deadline, `spin` seconds in which no frame arrived, or
        BUSY_LOOP_MAX (other threads wait for the lock meanwhile). True if ready()
        came true."""
        self.busy_pollers += 1
        try:
            now = clock()
            quiet_until = now + spin
            if deadline is None or deadline > now + BUSY_LOOP_MAX:
                deadline = now + BUSY_LOOP_MAX
            while True:
                received = 0
                for stack in self.stacks:
                    received += stack.poll(now)
                self.flush_dirty()
                if ready():
                    return True
                now = clock()
                if received:
                    quiet_until = now + spin
                if now >= quiet_until or now >= deadline:
                    return False
        finally:
            self.busy_pollers -= 1
            os.eventfd_write(self._efd, 1)


def runner_of(stack):
    """The stack's runner (made on first use; not started)."""
    runner = getattr(stack, "_runner", None)
    if runner is None:
        runner = Runner(stack)
    return runner


def raise_nofile_limit():
    """Raise RLIMIT_NOFILE's soft limit to the hard limit: every socket's
    fileno() costs two descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
