from typing import Dict, List

from .models import Note


class NoteStore:
    def __init__(self) -> None:
        self._notes: Dict[int, Note] = {}

    def add(self, title: str, body: str = "", tags=None) -> Note:
        note = Note(title, body) if tags is None else Note(title, body, list(tags))
        self._notes[note.id] = note
        return note

    def with_tag(self, tag: str) -> List[Note]:
        return [n for n in self._notes.values() if tag.lower() in n.tags]

    def all_tags(self) -> List[str]:
        return sorted({t for n in self._notes.values() for t in n.tags})
