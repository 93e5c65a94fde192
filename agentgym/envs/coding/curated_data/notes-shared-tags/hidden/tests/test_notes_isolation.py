from notes import Note, NoteStore


def test_new_notes_start_without_tags():
    Note("first").tag("work")
    assert Note("second").tags == []


def test_tagging_one_note_does_not_tag_others():
    store = NoteStore()
    a = store.add("a")
    b = store.add("b")
    a.tag("urgent")
    assert b.tags == []
    assert [n.title for n in store.with_tag("urgent")] == ["a"]


def test_explicit_tags_still_work():
    assert Note("t", tags=["k"]).tags == ["k"]
