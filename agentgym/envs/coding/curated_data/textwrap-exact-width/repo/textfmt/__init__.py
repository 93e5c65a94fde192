from .wrap import wrap
from .align import justify, center

__all__ = ["wrap", "justify", "center"]
