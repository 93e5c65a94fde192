from eventbus import EventBus, Recorder


def test_once_does_not_skip_the_next_handler():
    bus, first, second = EventBus(), Recorder(), Recorder()
    bus.once("saved", first)
    bus.on("saved", second)
    assert bus.emit("saved", "doc") == 2
    assert first.calls == [("doc",)] and second.calls == [("doc",)]


def test_handler_unsubscribing_itself():
    bus, seen = EventBus(), []

    def a():
        seen.append("a")
        off_a()

    off_a = bus.on("e", a)
    bus.on("e", lambda: seen.append("b"))
    bus.on("e", lambda: seen.append("c"))
    bus.emit("e")
    bus.emit("e")
    assert seen == ["a", "b", "c", "b", "c"]


def test_handler_added_during_emit_runs_next_time():
    bus, seen = EventBus(), []

    def adder():
        seen.append("adder")
        bus.on("e", lambda: seen.append("new"))

    bus.once("e", adder)
    bus.emit("e")
    assert seen == ["adder"]
    bus.emit("e")
    assert seen == ["adder", "new"]
