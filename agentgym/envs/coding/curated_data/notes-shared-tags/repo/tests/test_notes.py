from notes import Note, NoteStore


def test_tags_are_normalized():
    note = Note("groceries", tags=[]).tag(" Food ", "food", "")
    assert note.tags == ["food"]


def test_store_add_with_tags():
    store = NoteStore()
    store.add("a", tags=["x"])
    store.add("b", tags=["y"])
    assert store.all_tags() == ["x", "y"]
    assert [n.title for n in store.with_tag("X")] == ["a"]
