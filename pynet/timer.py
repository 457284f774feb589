"""Timers on a clock the caller supplies (Linux's timer_list, sans-IO).

Nothing here reads the time. The owner of a TimerBase (the stack) calls
`run(now)` with the current time and asks `next_expiry()` how long it may
sleep; tests drive the same code with a fake clock, to the microsecond.
Times are float seconds.

    timers = TimerBase()
    rto = Timer(timers, on_rto)      # timer_setup
    rto.mod(now + 0.2)               # mod_timer: (re)arm
    rto.delete()                     # del_timer
    timers.run(now)                  # fire everything due, in expiry order
"""
import heapq
import itertools


class Timer:
    """One timer: a callback and, while pending, an expiry time."""

    __slots__ = ("base", "callback", "expires", "_entry")

    def __init__(self, base, callback):
        self.base = base
        self.callback = callback
        self.expires = None
        self._entry = None

    @property
    def pending(self):
        return self._entry is not None

    def mod(self, expires):
        """Arm (or re-arm) the timer to fire at `expires`."""
        base = self.base
        if self._entry is not None:
            if expires == self.expires:
                return                       # as mod_timer: pending, same expiry
            base._forget(self._entry)
        self.expires = expires
        # TimerBase._add inline: TCP arms two or three timers per segment
        self._entry = entry = [expires, next(base._seq), self]
        heapq.heappush(base._heap, entry)

    def delete(self):
        """Disarm; returns True if it was pending (del_timer)."""
        entry = self._entry
        if entry is None:
            return False
        self.base._forget(entry)
        self._entry = None
        self.expires = None
        return True


class TimerBase:
    """The pending timers of one stack, a heap keyed by expiry.

    A deleted or re-armed timer's entry stays in the heap, marked dead, so
    either costs O(1); once dead entries are the majority the heap is rebuilt
    without them, so a long timer (TIME_WAIT's 60 s) deleted early does not
    hold its entry, and the memory, until it would have expired."""

    _PURGE_MIN = 64                      # below this, leave dead entries to run()

    def __init__(self):
        self._heap = []
        self._dead = 0                   # entries in _heap whose timer is None
        self._seq = itertools.count()    # equal expiries fire in arming order

    def _forget(self, entry):
        entry[2] = None
        self._dead = dead = self._dead + 1
        heap = self._heap
        if dead > self._PURGE_MIN and dead * 2 > len(heap):
            # in place: run() may be iterating over this very list
            heap[:] = [e for e in heap if e[2] is not None]
            heapq.heapify(heap)
            self._dead = 0

    def _prune(self):
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._dead -= 1

    def next_expiry(self):
        """The earliest pending expiry, or None."""
        self._prune()
        return self._heap[0][0] if self._heap else None

    def run(self, now):
        """Fire every timer due at `now`; returns how many fired.

        A callback may re-arm its own timer or others; one re-armed for a
        time <= now fires again in this call, so a zero-delay timer cannot
        starve the rest of the stack forever: each firing moves time forward
        only for callers that re-arm into the future.
        """
        fired = 0
        heap = self._heap
        while heap:
            expires, _, timer = heap[0]
            if timer is None:
                heapq.heappop(heap)
                self._dead -= 1
                continue
            if expires > now:
                break
            heapq.heappop(heap)
            timer._entry = None
            timer.expires = None
            fired += 1
            timer.callback(now)
        return fired

    def __len__(self):
        return len(self._heap) - self._dead
