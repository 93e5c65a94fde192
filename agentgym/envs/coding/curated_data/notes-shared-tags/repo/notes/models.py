import itertools

_ids = itertools.count(1)


class Note:
    def __init__(self, title: str, body: str = "", tags: list = []):
        self.id = next(_ids)
        self.title = title
        self.body = body
        self.tags = tags

    def tag(self, *names: str) -> "Note":
        for name in names:
            name = name.strip().lower()
            if name and name not in self.tags:
                self.tags.append(name)
        return self

    def __repr__(self) -> str:
        return f"Note({self.title!r}, tags={self.tags!r})"
