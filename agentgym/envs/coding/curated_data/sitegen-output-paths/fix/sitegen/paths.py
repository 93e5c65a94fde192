import os


def output_path(src: str, src_root: str, out_root: str) -> str:
    """Where the page built from ``src`` (a file under ``src_root``) goes under ``out_root``.

    ``docs/guide/intro.md`` with src_root ``docs`` and out_root ``site`` -> ``site/guide/intro.html``.
    """
    rel = os.path.relpath(os.path.normpath(src), os.path.normpath(src_root))
    if rel == ".." or rel.startswith(".." + os.sep):
        raise ValueError(f"{src} is not under {src_root}")
    base, ext = os.path.splitext(rel)
    if ext == ".md":
        rel = base + ".html"
    return os.path.join(out_root, rel)
