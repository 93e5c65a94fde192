"""A per-instance memo for expensive zero-argument methods."""

import functools


def cached(method):
    name = f"_cached_{method.__name__}"

    @functools.wraps(method)
    def wrapper(self):
        if not hasattr(self, name):
            setattr(self, name, method(self))
        return getattr(self, name)

    return wrapper


def invalidate(obj, *methods):
    for m in methods:
        obj.__dict__.pop(f"_cached_{m}", None)
