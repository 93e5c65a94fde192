from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Event:
    name: str
    at: datetime  # always timezone-aware

    def __post_init__(self):
        if self.at.tzinfo is None:
            raise ValueError("Event.at must be timezone-aware")

    @classmethod
    def from_timestamp(cls, name: str, ts: float) -> "Event":
        return cls(name, datetime.fromtimestamp(ts, tz=timezone.utc))
