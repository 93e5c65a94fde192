from .bus import EventBus
from .handlers import Recorder

__all__ = ["EventBus", "Recorder"]
