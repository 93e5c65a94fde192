from matrixlib import Matrix, identity, matmul


def test_wide_times_tall():
    a = Matrix([[1, 2, 3], [4, 5, 6]])
    b = Matrix([[7, 8], [9, 10], [11, 12]])
    assert matmul(a, b) == Matrix([[58, 64], [139, 154]])


def test_row_times_column():
    assert Matrix([[1, 2, 3]]) @ Matrix([[4], [5], [6]]) == Matrix([[32]])


def test_column_times_row():
    assert Matrix([[1], [2]]) @ Matrix([[3, 4]]) == Matrix([[3, 4], [6, 8]])


def test_identity_rectangular():
    a = Matrix([[1, 2, 3], [4, 5, 6]])
    assert matmul(a, identity(3)) == a
