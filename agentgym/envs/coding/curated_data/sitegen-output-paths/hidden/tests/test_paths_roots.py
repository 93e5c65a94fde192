import pytest

from sitegen import output_path, plan_build


def test_root_without_trailing_slash():
    assert output_path("docs/guide/intro.md", "docs", "site") == "site/guide/intro.html"


def test_root_with_dot_prefix():
    assert output_path("./docs/a.md", "./docs", "site") == "site/a.html"


def test_plan_without_trailing_slash_stays_in_output_root():
    plan = plan_build(["docs/a.md", "docs/b/c.md"], "docs", "out")
    assert plan == {"docs/a.md": "out/a.html", "docs/b/c.md": "out/b/c.html"}


def test_collision_detected():
    with pytest.raises(ValueError):
        plan_build(["docs/a.md", "docs/a.html"], "docs/", "out")
