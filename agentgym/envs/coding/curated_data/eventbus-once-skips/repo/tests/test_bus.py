from eventbus import EventBus, Recorder


def test_handlers_run_in_order():
    bus, seen = EventBus(), []
    bus.on("x", lambda: seen.append(1))
    bus.on("x", lambda: seen.append(2))
    assert bus.emit("x") == 2
    assert seen == [1, 2]


def test_unsubscribe():
    bus, r = EventBus(), Recorder()
    off = bus.on("x", r)
    off()
    assert bus.emit("x", 1) == 0 and r.calls == []


def test_once_runs_once_when_alone():
    bus, r = EventBus(), Recorder()
    bus.once("x", r)
    bus.emit("x", 1)
    bus.emit("x", 2)
    assert r.calls == [(1,)]
