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

A socket call that must block drives the stacks itself (poll_wait) when no
other call does: it polls the devices, and sleeps in select() on their
descriptors with the stack lock released, until its socket is ready. The
frame it waits for then wakes the thread that wants it, where going through
the runner would cost a second wake-up and a hand-over of the stack lock and
the GIL (on one CPU that cost a 1-byte request/response a quarter of its
rate). It
may first spin without sleeping (Linux's busy polling, SO_BUSY_POLL /
net.core.busy_read). The runner thread stands aside while a call polls, and
for HANDOFF_GRACE after it, since a thread that just returned from a
blocking call is usually about to make the next one; it takes over at once
when other calls sleep on their sockets' conditions.
"""
import contextlib
import os
import resource
import selectors
import threading
import weakref
import time

from pynet.stack import NAPI_POLL_WEIGHT

clock = time.monotonic
_IDLE = 1.0        # longest sleep: picks up devices added while running
BUSY_LOOP_MAX = 0.001   # longest a socket call spins (holding the stack lock) before it sleeps
# How long after a socket call stopped polling the runner still stands aside: a
# timer may fire this late meanwhile (Linux's timers are a jiffy, 1-4 ms, coarse).
# Waking every 1 ms cost a request/response loop a tenth of its rate, 2-5 ms nothing.
HANDOFF_GRACE = 0.002


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
        self.pollers = 0            # socket calls driving the stacks themselves (poll_wait): 0 or 1
        self.sleepers = 0           # socket calls asleep on their conditions: the runner serves them
        self.last_poll = 0.0        # when the last poll_wait ended
        self.aside_deep = False     # the thread sleeps until a poll_wait ends
        self._poll_sel = None       # poll_wait's selector: the eventfd and the devices
        self._poll_watched = set()
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
        if self._efd is None:
            # open as long as the runner exists: a poll_wait may be in select() on
            # it when stop() runs
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            weakref.finalize(self, os.close, self._efd)
            self._poll_sel = selectors.DefaultSelector()
            self._poll_sel.register(self._efd, selectors.EVENT_READ)
        self._drain_eventfd()
        self._thread = threading.Thread(target=self._run, name="pynet-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        thread = self._thread
        if thread is None:
            return
        # stopped first: a blocking call that finds the thread gone before this
        # was set would start a new one. The eventfd stays readable from here on,
        # so a poll_wait about to sleep on it cannot miss the stop.
        self.stopped = self._stopping = True
        os.eventfd_write(self._efd, 1)
        thread.join()
        self._thread = None
        with self.lock:
            for cond in self.waiters:
                cond.notify_all()

    def kick(self):
        """A socket call armed a timer or queued frames: make sure the
        thread looks before it would have (caller holds the lock)."""
        if self._thread is None:
            return
        if self._in_grace():
            return      # the thread stands aside and looks again within HANDOFF_GRACE
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

    def _in_grace(self):
        """No call polls or sleeps, and one polled less than HANDOFF_GRACE ago:
        the thread stands aside, as that call is likely to come back."""
        return (not self.pollers and not self.sleepers
                and clock() - self.last_poll < HANDOFF_GRACE)

    def flush_dirty(self):
        """Wake the sockets whose callbacks fired and update their PollFds."""
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for sock in dirty:
            sock._cond.notify_all()
            sock._update_pollfd()

    def _watch_devices(self, sel, watched):
        """Make sel watch the devices' descriptors (those that have one) for
        input, besides what else it watches; watched: the ones it did. Returns
        the ones it does now."""
        fds = set()
        for stack in self.stacks:
            for dev in stack.devices.values():
                try:
                    fds.add(dev.fileno())
                except (ValueError, NotImplementedError, OSError):
                    pass
        for fd in watched - fds:
            sel.unregister(fd)
        for fd in fds - watched:
            sel.register(fd, selectors.EVENT_READ)
        return fds

    def _next_wait(self, now, busy):
        """How long a poller may sleep: until the next timer, at most _IDLE; not
        at all after a full budget or while frames wait in a device's queue."""
        if busy or any(dev.qdisc for s in self.stacks for dev in s.devices.values()):
            return 0.0
        nxt = min((t for t in (s.next_timer() for s in self.stacks) if t is not None),
                  default=None)
        return _IDLE if nxt is None else min(_IDLE, max(nxt - now, 0.0))

    def _poll_stacks(self, now):
        """Poll every stack once: (frames taken, whether some device filled its budget)."""
        received = 0
        busy = False
        for stack in self.stacks:
            n = stack.poll(now)
            received += n
            busy |= n >= NAPI_POLL_WEIGHT    # frames are waiting: poll again at once
        self.flush_dirty()
        return received, busy

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self._efd, selectors.EVENT_READ)
        watched = set()
        aside = selectors.DefaultSelector()     # only the eventfd: while calls poll
        aside.register(self._efd, selectors.EVENT_READ)
        try:
            while not self._stopping:
                # Stand aside while a socket call polls the devices: it wakes us when
                # it leaves (flag first, so one leaving meanwhile sees it). Then for
                # HANDOFF_GRACE, as the thread is likely to be back with its next
                # call, unless calls sleep on their conditions and need us now.
                self.aside_deep = True
                if self.pollers:
                    if aside.select(_IDLE) and not self._stopping:
                        self._drain_eventfd()
                    self.aside_deep = False
                    continue
                self.aside_deep = False
                if self._in_grace():
                    if aside.select(HANDOFF_GRACE) and not self._stopping:
                        self._drain_eventfd()
                    continue
                with self.lock:
                    now = clock()
                    _, busy = self._poll_stacks(now)
                    wait = self._next_wait(now, busy)
                    self.wake_at = now + wait
                    watched = self._watch_devices(sel, watched)
                for key, _ in sel.select(wait):
                    if key.fd == self._efd and not self._stopping:
                        self._drain_eventfd()
        finally:
            sel.close()
            aside.close()

    def _drain_eventfd(self):
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass

    @contextlib.contextmanager
    def sleeping(self):
        """Around a socket call's sleep on its condition: the runner must serve
        it, so it stops standing aside unless a poll_wait will wake it when it
        leaves (caller holds the lock)."""
        self.sleepers += 1
        try:
            if not self.pollers and self._thread is not None:
                os.eventfd_write(self._efd, 1)
            yield
        finally:
            self.sleepers -= 1

    def poll_wait(self, ready, deadline=None, spin=0.0):
        """Drive the stacks from the calling thread (which holds the lock) until
        ready(): poll the devices, spin for `spin` seconds after the last frame
        (at most BUSY_LOOP_MAX with the lock held), then sleep in select() on the
        devices and the eventfd with the lock released. False, with ready() still
        false, when another call is polling already, at the deadline, or once the
        runner is stopped: the caller then sleeps on its condition or fails."""
        if self.pollers or self.stopped:
            return False
        self.pollers += 1
        lock = self.lock
        try:
            now = clock()
            quiet_until = now + spin
            spin_until = now + min(spin, BUSY_LOOP_MAX)
            while True:
                received, busy = self._poll_stacks(now)
                if ready():
                    return True
                now = clock()
                if self.stopped or (deadline is not None and now >= deadline):
                    return False
                if received:
                    quiet_until = now + spin
                if now < quiet_until and now < spin_until:
                    continue
                wait = self._next_wait(now, busy)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                self.wake_at = now + wait          # kick() wakes us for an earlier timer
                self._poll_watched = self._watch_devices(self._poll_sel, self._poll_watched)
                saved = lock._release_save()       # as Condition.wait lets go of an RLock
                try:
                    events = self._poll_sel.select(wait)
                finally:
                    lock._acquire_restore(saved)
                if any(key.fd == self._efd for key, _ in events) and not self.stopped:
                    self._drain_eventfd()
                now = clock()
        finally:
            self.pollers -= 1
            self.last_poll = clock()
            if self.sleepers or self.aside_deep:
                # the runner takes over for the sleepers now, or starts its grace
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
