from depgraph import DependencyGraph, install_order


def test_chain():
    g = DependencyGraph().add("app", "web").add("web", "http")
    assert install_order(g, "app") == ["http", "web", "app"]


def test_diamond_installs_shared_dependency_once():
    g = DependencyGraph().add("app", "a", "b").add("a", "core").add("b", "core")
    assert install_order(g, "app") == ["core", "a", "b", "app"]


def test_leaf():
    assert install_order(DependencyGraph().add("x"), "x") == ["x"]
