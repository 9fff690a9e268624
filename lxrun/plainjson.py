"""JSON for lxrun's own files (task records, stack versions, caches) through the interpreter's C codec
(_json) without the json package: `import json` brings re and enum with it, ~5 ms of every `lxrun exec`.

The same text as json.dumps (default separators) and the same values as json.loads. What the C codec
can't take (indent, a document it rejects) goes to the json package itself, so its output and its
errors (json.JSONDecodeError, a ValueError) stay exactly json's.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

WHITESPACE = " \t\n\r"  # json's own: [ \t\n\r]*
CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def unserializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")  # json's words


class Context:
    """What _json.make_scanner reads from json.JSONDecoder: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = CONSTANTS.__getitem__


# json.dumps's defaults (no indent, ", " and ": ", unsorted, allow_nan) but no circular check: plain data.
_encode = _json.make_encoder(None, unserializable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)
_scan = _json.make_scanner(Context())  # type: ignore[arg-type]  # typeshed wants a scanner, C reads attributes


def dumps(value: object, indent: int | str | None = None) -> str:
    if indent is None:
        return "".join(_encode(value, 0))
    return _indented(value, " " * indent if isinstance(indent, int) else indent, 0)


def _indented(value: object, indent: str, level: int) -> str:
    """json.dumps(value, indent=indent)'s text for plain data (lxrun-oci's `state`, runc's layout); a key
    that isn't a string (json converts those) goes to the json package."""
    if isinstance(value, dict) and value:
        if not all(isinstance(key, str) for key in value):
            import json

            return json.dumps(value, indent=indent)
        items = [f"{_encode(key, 0)[0]}: {_indented(item, indent, level + 1)}" for key, item in value.items()]
    elif isinstance(value, list | tuple) and value:
        items = [_indented(item, indent, level + 1) for item in value]
    else:
        return "".join(_encode(value, 0))
    inner, outer = "\n" + indent * (level + 1), "\n" + indent * level
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    return opening + inner + ("," + inner).join(items) + outer + closing


def loads(text: str | bytes) -> Any:
    try:
        document = text.decode() if isinstance(text, bytes) else text
        start = len(document) - len(document.lstrip(WHITESPACE))
        value, end = _scan(document, start)
        if document[end:].strip(WHITESPACE):
            raise StopIteration(end)  # extra data after the document: json's error names it
    except (StopIteration, ValueError):
        import json

        return json.loads(text)  # raises json's own error for what the scanner refused
    return value


def load(file: IO[str] | IO[bytes]) -> Any:
    return loads(file.read())
