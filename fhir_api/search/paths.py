"""Dotted element paths walked through JSON lists: the small part of FHIRPath search needs.

`values_at(patient, "name.given")` gives every given name of every name. That is all the R4
search parameter expressions we support require once choice types are spelled out
(`effectiveDateTime`) and `where(resolve() is X)` is left to reference targets.
"""

from functools import lru_cache


@lru_cache(maxsize=1024)
def _steps(path):
    return tuple(path.split("."))


def values_at(content, path):
    """Every non-null value at `path` below `content`, lists flattened at each step."""
    current = [content]
    for step in _steps(path):
        found = []
        for node in current:
            if not isinstance(node, dict):
                continue
            value = node.get(step)
            if isinstance(value, list):
                found.extend(item for item in value if item is not None)
            elif value is not None:
                found.append(value)
        if not found:
            return []
        current = found
    return current
