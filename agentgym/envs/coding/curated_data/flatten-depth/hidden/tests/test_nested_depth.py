from nested import flatten


def test_depth_one_removes_one_level():
    assert flatten([1, [2, [3, [4]]]], depth=1) == [1, 2, [3, [4]]]


def test_depth_two():
    assert flatten([1, [2, [3, [4]]]], depth=2) == [1, 2, 3, [4]]


def test_depth_zero_is_a_copy():
    data = [1, [2]]
    out = flatten(data, depth=0)
    assert out == [1, [2]] and out is not data


def test_depth_larger_than_nesting():
    assert flatten([1, [2]], depth=5) == [1, 2]
