from nested import depth, flatten, leaves


def test_flatten_everything():
    assert flatten([1, [2, [3, (4, 5)]], 6]) == [1, 2, 3, 4, 5, 6]


def test_flatten_flat_list():
    assert flatten([1, 2]) == [1, 2]


def test_leaves_and_depth():
    tree = [1, [2, [3]]]
    assert list(leaves(tree)) == [1, 2, 3]
    assert depth(tree) == 3
    assert depth(5) == 0
