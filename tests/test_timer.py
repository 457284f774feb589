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
