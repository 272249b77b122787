"""JSON sent by clients, parsed with a bound on its nesting.

``json.loads`` recurses once per level: a body of 100,000 ``[`` raises RecursionError (a 500,
which clients retry for minutes), and a few thousand levels parse but then exhaust the stack
of whatever walks, validates, hashes or stores the document. No input of the registry needs
more than a few levels, so every request body, form field and uploaded metadata file is read
through ``loads`` here, which refuses deeper documents with a ValueError (so callers that
answer bad JSON with a 400 answer this one too), and says why.
"""

import json
from typing import Any

MAX_DEPTH = 64


class TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(
            f"The JSON is nested too deeply: at most {MAX_DEPTH} levels of lists and objects."
        )


def loads(raw: str | bytes, **kwargs) -> Any:
    """``json.loads(raw, **kwargs)``, refusing documents nested deeper than MAX_DEPTH."""
    try:
        data = json.loads(raw, **kwargs)
    except RecursionError:
        raise TooDeep from None
    _check_depth(data)
    return data


def _check_depth(data: Any) -> None:
    stack = [(data, 1)] if isinstance(data, dict | list) else []  # no recursion here either
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > MAX_DEPTH:
            raise TooDeep
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
