"""MLflow's search grammar: filter strings, order_by clauses and page tokens.

A filter is clauses joined by AND: ``<key> <op> <value>``. Keys are attributes (``name``,
``version_number``…) or tags (``tags.key``, ``tag.`key with spaces```, ``tags."k"``); values
are quoted strings, numbers, or for IN a parenthesised list. Parsing is pure and raises
``FilterError`` with a message for the caller; translating produces a ``Q`` for the queryset.
LIKE is case-sensitive with ``%`` and ``_`` as wildcards, ILIKE is not; every other character,
backslash included, is literal. Both run as the database's own pattern matching, never as a
regular expression: a backtracking regex turns a pattern such as ``'%%%%%%%%%%%%!'`` into hours of
work per row, while SQL LIKE (and SQLite's GLOB) need time bounded by pattern × text, and the
number of wildcards in one pattern is capped.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass

from django.db.models import F, Lookup, Q

from core import jsonbody
from models_app.models import ModelTag, VersionTag
from models_app.names import name_key

PROMPT_TAG = "mlflow.prompt.is_prompt"
STATUS_TAG = "registry.status"


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    kind: str  # "attribute" or "tag"
    key: str
    op: str  # "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"
    value: object  # str, int/float, or a tuple of str for IN


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<backtick>`[^`]*`)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"Invalid filter: cannot read {text[pos : pos + 30]!r}.")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def parse(text: str | None) -> list[Clause]:
    """The clauses of a filter string; an empty filter is no clause."""
    if not text or not text.strip():
        return []
    if len(text) > 10000:
        raise FilterError("Invalid filter: at most 10,000 characters.")
    tokens = _tokens(text)
    clauses, i = [], 0
    while True:
        clause, i = _clause(tokens, i)
        clauses.append(clause)
        if i == len(tokens):
            return clauses
        kind, value = tokens[i]
        if kind == "word" and value.upper() == "OR":
            raise FilterError("Invalid filter: OR is not supported; join clauses with AND.")
        if kind != "word" or value.upper() != "AND":
            raise FilterError(f"Invalid filter: expected AND, got {value!r}.")
        i += 1


def _unquote(token: str) -> str:
    return token[1:-1]


def _clause(tokens: list, i: int) -> tuple[Clause, int]:
    def at(j):
        if j >= len(tokens):
            raise FilterError("Invalid filter: it ends in the middle of a clause.")
        return tokens[j]

    kind, value = at(i)
    if kind == "word":
        lowered = value.lower()
        prefix = next(
            (p for p in ("tags.", "tag.", "attribute.", "attr.") if lowered.startswith(p)), ""
        )
        rest = value[len(prefix) :]
        if prefix and not rest:
            i += 1
            kind, quoted = at(i)
            if kind not in ("backtick", "string"):
                raise FilterError(f"Invalid filter: expected a key after {value!r}.")
            rest = _unquote(quoted)
        key_kind = "tag" if prefix.startswith("tag") else "attribute"
        key = rest if key_kind == "tag" else rest.lower()
    elif kind == "backtick":
        key_kind, key = "attribute", _unquote(value).lower()
    else:
        raise FilterError(f"Invalid filter: expected a key, got {value!r}.")
    if not key:
        raise FilterError("Invalid filter: a key is empty.")
    i += 1

    kind, op = at(i)
    if kind == "op":
        op = "!=" if op == "<>" else op
    elif kind == "word" and op.upper() in ("LIKE", "ILIKE", "IN"):
        op = op.upper()
    elif kind == "word" and op.upper() == "NOT" and at(i + 1)[1].upper() == "IN":
        op, i = "NOT IN", i + 1
    else:
        raise FilterError(f"Invalid filter: expected a comparison after {key!r}, got {op!r}.")
    i += 1

    if op in ("IN", "NOT IN"):
        if at(i) != ("punct", "("):
            raise FilterError(f"Invalid filter: {op} needs a list in parentheses.")
        items, i = [], i + 1
        while True:
            kind, item = at(i)
            if kind != "string":
                raise FilterError(f"Invalid filter: {op} lists hold quoted strings.")
            items.append(_unquote(item))
            kind, sep = at(i + 1)
            i += 2
            if sep == ")":
                break
            if sep != ",":
                raise FilterError(f"Invalid filter: expected ',' or ')' in the {op} list.")
        return Clause(key_kind, key, op, tuple(items)), i

    kind, raw = at(i)
    if kind == "string":
        parsed = _unquote(raw)
    elif kind == "number":
        parsed = float(raw) if "." in raw else int(raw)
    else:
        raise FilterError(f"Invalid filter: values are quoted strings or numbers, got {raw!r}.")
    return Clause(key_kind, key, op, parsed), i + 1


# ---------------------------------------------------------------------------------------------
# Translating clauses into querysets


MAX_LIKE_WILDCARDS = 20


class Like(Lookup):
    """``lhs`` matches the SQL LIKE pattern ``rhs`` (``%`` any run, ``_`` one character, no
    escape character), case-sensitively; ``ILike`` ignores case.

    PostgreSQL runs LIKE/ILIKE with the pattern's backslashes escaped. SQLite's LIKE ignores
    ASCII case (case_sensitive_like is connection-wide), so the case-sensitive match there is
    GLOB with ``*``/``?``/``[`` made literal; ILIKE is LIKE … ESCAPE. Neither engine backtracks
    without bound, unlike a regular expression."""

    lookup_name = "mlflow_like"
    prepare_rhs = False
    case_sensitive = True

    def _sides(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return lhs, rhs, (*lhs_params, *rhs_params)

    def get_db_prep_lookup(self, value, connection):
        return "%s", [self.translate(value, connection.vendor)]

    def translate(self, pattern: str, vendor: str) -> str:
        if vendor == "sqlite" and self.case_sensitive:
            glob = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
            return "".join(glob.get(c, c) for c in pattern)
        return pattern.replace("\\", "\\\\")

    def as_sql(self, compiler, connection):
        lhs, rhs, params = self._sides(compiler, connection)
        op = "LIKE" if self.case_sensitive else "ILIKE"
        return f"{lhs} {op} {rhs} ESCAPE '\\'", params

    def as_sqlite(self, compiler, connection):
        lhs, rhs, params = self._sides(compiler, connection)
        if self.case_sensitive:
            return f"{lhs} GLOB {rhs}", params
        return f"{lhs} LIKE {rhs} ESCAPE '\\'", params


class ILike(Like):
    lookup_name = "mlflow_ilike"
    case_sensitive = False


def like_q(field: str, op: str, pattern: str, *, key: str) -> Q:
    """``field`` LIKE/ILIKE ``pattern``, refused when the pattern holds too many wildcards."""
    wildcards = sum(pattern.count(c) for c in "%_")
    if wildcards > MAX_LIKE_WILDCARDS:
        raise FilterError(
            f"Invalid filter: a {op} pattern may hold at most {MAX_LIKE_WILDCARDS} wildcards "
            f"(% and _); the one for {key!r} holds {wildcards}."
        )
    lookup = Like if op == "LIKE" else ILike
    return Q(lookup(F(field), pattern))


def _text_q(field: str, op: str, value, *, allowed: tuple[str, ...], key: str) -> Q:
    if op not in allowed:
        raise FilterError(
            f"Invalid comparator {op!r} for {key!r}; use one of {', '.join(allowed)}."
        )
    if op in ("IN", "NOT IN"):
        q = Q(**{f"{field}__in": list(value)})
        return ~q if op == "NOT IN" else q
    if not isinstance(value, str):
        raise FilterError(f"Invalid filter: {key!r} compares with a quoted string.")
    if op == "=":
        return Q(**{field: value})
    if op == "!=":
        return ~Q(**{field: value})
    return like_q(field, op, value, key=key)


def _tag_rows(rows, op: str, value, key: str):
    """Tag rows with this key matching the comparison (stock MLflow: only entities that carry
    the tag match, for every operator)."""
    if not isinstance(value, str):
        raise FilterError(f"Invalid filter: tag {key!r} compares with a quoted string.")
    rows = rows.filter(key=key)
    if op == "=":
        return rows.filter(value=value)
    if op == "!=":
        return rows.exclude(value=value)
    if op in ("LIKE", "ILIKE"):
        return rows.filter(like_q("value", op, value, key=f"tags.{key}"))
    raise FilterError(f"Invalid comparator {op!r} for tags; use one of =, !=, LIKE, ILIKE.")


def _name_q(field_prefix: str, op: str, value, allowed) -> Q:
    """Model names compare the way names clash (case, look-alikes, separators) for = and IN,
    as the registry's lookups by name do; LIKE and ILIKE match the name as displayed."""
    if op in ("=", "!="):
        if not isinstance(value, str):
            raise FilterError("Invalid filter: 'name' compares with a quoted string.")
        q = Q(**{f"{field_prefix}name_key": name_key(value)})
        return ~q if op == "!=" else q
    if op in ("IN", "NOT IN"):
        q = Q(**{f"{field_prefix}name_key__in": [name_key(v) for v in value]})
        return ~q if op == "NOT IN" else q
    return _text_q(f"{field_prefix}name", op, value, allowed=allowed, key="name")


def model_q(clauses: list[Clause]) -> Q:
    q = Q()
    for c in clauses:
        if c.kind == "tag":
            if c.key == PROMPT_TAG and c.op == "!=" and c.value == "true":
                # The client appends this to every search: models without the tag match.
                prompts = ModelTag.objects.filter(key=PROMPT_TAG, value="true")
                q &= ~Q(pk__in=prompts.values("model"))
            else:
                q &= Q(pk__in=_tag_rows(ModelTag.objects, c.op, c.value, c.key).values("model"))
        elif c.key == "name":
            q &= _name_q("", c.op, c.value, ("=", "!=", "LIKE", "ILIKE"))
        else:
            raise FilterError(
                f"Invalid attribute key {c.key!r} specified. Valid keys are ['name'] "
                "and tags (tags.<key>)."
            )
    return q


VERSION_ATTRIBUTES = ["name", "run_id", "source_path", "version_number"]


def version_q(clauses: list[Clause]) -> Q:
    """Needs the queryset annotated with ``mlflow_source`` when a clause uses source_path
    (see serializers.with_source)."""
    texts = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
    q = Q()
    for c in clauses:
        if c.kind == "tag" and c.key == STATUS_TAG:
            q &= _text_q("status", c.op, c.value, allowed=texts, key=c.key)
        elif c.kind == "tag":
            rows = _tag_rows(VersionTag.objects, c.op, c.value, c.key)
            q &= Q(pk__in=rows.values("version"))
        elif c.key == "name":
            q &= _name_q("model__", c.op, c.value, texts)
        elif c.key == "run_id":
            q &= _text_q("source_run", c.op, c.value, allowed=texts, key=c.key)
        elif c.key == "source_path":
            q &= _text_q("mlflow_source", c.op, c.value, allowed=texts[:4], key=c.key)
        elif c.key in ("version_number", "version"):
            q &= _number_q(c)
        else:
            raise FilterError(
                f"Invalid attribute key {c.key!r} specified. Valid keys are "
                f"{VERSION_ATTRIBUTES} and tags (tags.<key>)."
            )
    return q


def _number_q(c: Clause) -> Q:
    value = c.value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise FilterError(
            f"Invalid filter: version_number compares with an integer, not {value!r}."
        )
    lookups = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
    if c.op == "!=":
        return ~Q(number=value)
    if c.op not in lookups:
        raise FilterError(f"Invalid comparator {c.op!r} for version_number.")
    return Q(**{f"number__{lookups[c.op]}": value})


# ---------------------------------------------------------------------------------------------
# Ordering

MODEL_ORDER = {
    "name": "name_key",
    "last_updated_timestamp": "updated_at",
    "timestamp": "updated_at",
}
VERSION_ORDER = {
    "name": "model__name_key",
    "version_number": "number",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
    "timestamp": "updated_at",
}


def order_by(entries: list[str], fields: dict[str, str], *, default: list[str], tail: list[str]):
    """``["name ASC", "last_updated_timestamp DESC"]`` → Django order_by terms, with the
    tiebreakers in ``tail`` appended so pages never overlap."""
    terms = []
    for entry in entries:
        parts = entry.split()
        if not parts or len(parts) > 2:
            raise FilterError(f"Invalid order_by clause {entry!r}.")
        key = parts[0].strip("`").lower()
        if key.startswith("attribute."):
            key = key[len("attribute.") :]
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if key not in fields or direction not in ("ASC", "DESC"):
            raise FilterError(
                f"Invalid order_by clause {entry!r}. Keys: {', '.join(sorted(fields))}; "
                "directions: ASC, DESC."
            )
        terms.append(("-" if direction == "DESC" else "") + fields[key])
    terms = terms or list(default)
    used = {t.lstrip("-") for t in terms}
    return terms + [t for t in tail if t.lstrip("-") not in used]


# ---------------------------------------------------------------------------------------------
# Page tokens: opaque to the client, base64 of {"offset": N} as in stock MLflow.


def encode_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        data = jsonbody.loads(base64.b64decode(token, validate=True))
        offset = data["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise FilterError("Invalid page token: it was not returned by this server.") from None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise FilterError("Invalid page token: it was not returned by this server.")
    return offset
