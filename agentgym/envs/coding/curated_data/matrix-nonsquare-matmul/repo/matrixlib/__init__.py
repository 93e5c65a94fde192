from .matrix import Matrix
from .ops import identity, matmul, transpose

__all__ = ["Matrix", "identity", "matmul", "transpose"]
