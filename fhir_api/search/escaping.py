"""FHIR search value escaping: `\\,`, `\\|`, `\\$` and `\\\\` stand for the literal characters.

A comma separates OR-ed values and a pipe separates a token's system from its code, so both
are split before unescaping (search.html#escaping).
"""

import re

_ESCAPED = re.compile(r"\\([\\,|$])")


def split_escaped(text, separator):
    """Split on every `separator` not preceded by a backslash; escapes stay in the parts."""
    if "\\" not in text:
        return text.split(separator)
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def unescape(text):
    return _ESCAPED.sub(r"\1", text) if "\\" in text else text
