from pager import page_links, paginate


def test_partial_last_page_is_counted():
    page = paginate(list(range(25)), 2, 10)
    assert page.page_count == 3
    assert page.has_next


def test_links_point_to_partial_last_page():
    links = page_links(paginate(list(range(21)), 1, 10), "/api/items")
    assert links["last"] == "/api/items?page=3&per_page=10"


def test_last_page_has_no_next():
    page = paginate(list(range(25)), 3, 10)
    assert page.items == [20, 21, 22, 23, 24]
    assert not page.has_next
