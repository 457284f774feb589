"""Timers fire in expiry order on the clock they are given, and only then."""
from pynet.timer import Timer, TimerBase


def test_timers_fire_in_order_only_when_due():
    base = TimerBase()
    fired = []
    a = Timer(base, lambda now: fired.append(("a", now)))
    b = Timer(base, lambda now: fired.append(("b", now)))
    a.mod(2.0)
    b.mod(1.0)
    assert base.next_expiry() == 1.0
    assert base.run(0.5) == 0 and fired == []
    assert base.run(1.0) == 1 and fired == [("b", 1.0)]
    assert base.run(5.0) == 1 and fired[-1] == ("a", 5.0)
    assert not a.pending and base.next_expiry() is None


def test_rearm_and_delete():
    base = TimerBase()
    fired = []
    t = Timer(base, fired.append)
    t.mod(1.0)
    t.mod(3.0)                      # re-arming moves it, does not add a second firing
    assert base.run(2.0) == 0
    assert base.run(3.0) == 1 and fired == [3.0]
    t.mod(4.0)
    assert t.delete() and not t.delete()
    assert base.run(10.0) == 0 and len(base) == 0


def test_callback_can_rearm_itself():
    base = TimerBase()
    ticks = []

    def tick(now):
        ticks.append(now)
        if len(ticks) < 3:
            t.mod(now + 1.0)

    t = Timer(base, tick)
    t.mod(0.0)
    for now in (0.0, 1.0, 2.0, 3.0):
        base.run(now)
    assert ticks == [0.0, 1.0, 2.0]


def test_deleted_entries_are_purged_not_kept_until_expiry():
    """Timers deleted long before expiry (TIME_WAIT's 60 s) must not pile up
    in the heap: once dead entries are the majority it is rebuilt."""
    base = TimerBase()
    fired = []
    keep = [Timer(base, fired.append) for _ in range(10)]
    for i, t in enumerate(keep):
        t.mod(100.0 + i)
    for _ in range(50):
        gone = [Timer(base, fired.append) for _ in range(20)]
        for t in gone:
            t.mod(60.0)
        for t in gone:
            t.delete()
        keep[0].mod(keep[0].expires)            # re-arming leaves a dead entry too
    assert len(base) == 10
    assert len(base._heap) <= 2 * max(len(base), TimerBase._PURGE_MIN) + 1
    assert base.next_expiry() == 100.0
    assert base.run(60.0) == 0 and fired == []
    assert base.run(200.0) == 10 and fired == [200.0] * 10 and len(base) == 0


def test_purge_during_run_keeps_order():
    """A callback that deletes many timers (purging the heap under run())
    leaves the remaining ones firing in expiry order, each once."""
    base = TimerBase()
    fired = []
    victims = [Timer(base, lambda now: fired.append("victim")) for _ in range(200)]
    for t in victims:
        t.mod(5.0)
    late = [Timer(base, lambda now, i=i: fired.append(i)) for i in range(3)]
    for i, t in enumerate(late):
        t.mod(3.0 + i * 0.5)

    def killer(now):
        fired.append("killer")
        for t in victims:
            t.delete()

    Timer(base, killer).mod(1.0)
    assert base.run(10.0) == 4
    assert fired == ["killer", 0, 1, 2]
    assert len(base._heap) == 0 and len(base) == 0
