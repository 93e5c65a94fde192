import pytest

from matrixlib import Matrix, identity, matmul, transpose


def test_square_product():
    a = Matrix([[1, 2], [3, 4]])
    assert a @ Matrix([[5, 6], [7, 8]]) == Matrix([[19, 22], [43, 50]])


def test_identity():
    a = Matrix([[1, 2], [3, 4]])
    assert matmul(a, identity(2)) == a


def test_transpose():
    assert transpose(Matrix([[1, 2, 3]])) == Matrix([[1], [2], [3]])


def test_shape_mismatch():
    with pytest.raises(ValueError):
        matmul(Matrix([[1, 2]]), Matrix([[1, 2]]))
