import pytest

from pager import page_links, paginate


def test_first_page():
    page = paginate(list(range(30)), 1, 10)
    assert page.items == list(range(10))
    assert page.page_count == 3
    assert page.has_next and not page.has_previous


def test_empty_list_has_one_page():
    page = paginate([], 1, 10)
    assert page.items == [] and page.page_count == 1 and not page.has_next


def test_invalid_arguments():
    with pytest.raises(ValueError):
        paginate([1], 0)
    with pytest.raises(ValueError):
        paginate([1], 1, 0)


def test_links_middle_page():
    links = page_links(paginate(list(range(30)), 2, 10), "/api/users")
    assert links["next"] == "/api/users?page=3&per_page=10"
    assert links["prev"] == "/api/users?page=1&per_page=10"
    assert links["last"] == "/api/users?page=3&per_page=10"
