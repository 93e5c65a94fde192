import os


def output_path(src: str, src_root: str, out_root: str) -> str:
    """Where the page built from ``src`` (a file under ``src_root``) goes under ``out_root``.

    ``docs/guide/intro.md`` with src_root ``docs`` and out_root ``site`` -> ``site/guide/intro.html``.
    """
    rel = src[len(src_root):]
    base, ext = os.path.splitext(rel)
    if ext == ".md":
        rel = base + ".html"
    return os.path.join(out_root, rel)
