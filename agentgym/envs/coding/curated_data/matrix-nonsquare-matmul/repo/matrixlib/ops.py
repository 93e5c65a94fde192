from .matrix import Matrix


def identity(n: int) -> Matrix:
    return Matrix([[1 if i == j else 0 for j in range(n)] for i in range(n)])


def transpose(m: Matrix) -> Matrix:
    rows, cols = m.shape
    return Matrix([[m.rows[i][j] for i in range(rows)] for j in range(cols)])


def matmul(a: Matrix, b: Matrix) -> Matrix:
    (n, k), (k2, p) = a.shape, b.shape
    if k != k2:
        raise ValueError(f"cannot multiply {a.shape} by {b.shape}")
    return Matrix([[sum(a.rows[i][t] * b.rows[t][j] for t in range(n)) for j in range(p)] for i in range(n)])
