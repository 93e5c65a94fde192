from sitegen import output_path, plan_build


def test_markdown_becomes_html():
    assert output_path("docs/guide/intro.md", "docs/", "site") == "site/guide/intro.html"


def test_other_files_are_copied():
    assert output_path("docs/img/logo.png", "docs/", "site") == "site/img/logo.png"


def test_plan():
    plan = plan_build(["docs/a.md", "docs/b/c.md"], "docs/", "out")
    assert plan == {"docs/a.md": "out/a.html", "docs/b/c.md": "out/b/c.html"}
