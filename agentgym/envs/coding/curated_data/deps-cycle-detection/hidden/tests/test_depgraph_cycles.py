import pytest

from depgraph import CycleError, DependencyGraph, install_order


def test_two_package_cycle_is_reported():
    g = DependencyGraph().add("a", "b").add("b", "a")
    with pytest.raises(CycleError) as info:
        install_order(g, "a")
    assert info.value.cycle == ["a", "b", "a"]


def test_self_dependency():
    g = DependencyGraph().add("a", "a")
    with pytest.raises(CycleError):
        install_order(g, "a")


def test_cycle_below_target():
    g = DependencyGraph().add("app", "x").add("x", "y").add("y", "z").add("z", "x")
    with pytest.raises(CycleError) as info:
        install_order(g, "app")
    assert info.value.cycle == ["x", "y", "z", "x"]


def test_diamond_is_not_a_cycle():
    g = DependencyGraph().add("app", "a", "b").add("a", "core").add("b", "core")
    assert install_order(g, "app")[-1] == "app"
