"""Audit events as lines a person can read ("status: in review → approved",
"files: + model.pkl (sha256 3f2a9c1d…)"), for the audit page and the version timeline; the
CSV keeps the exact JSON. Render after redaction (approvals.selectors.redact_lineage): this
module shows what it is given.

Values are shown as stored: strings as given, numbers by their repr (0.06 is "0.06"), never
a raw dict or list repr. Shapes this module does not know fall back to "key: value" lines."""

SHA_SHOWN = 8
LONG = 160  # the templates truncate longer lines and keep the whole line in a title


def lines(event) -> list[str]:
    """The readable lines of one event's change (its before/after)."""
    return changes(event.action, event.before, event.after)


def changes(action: str, before, after) -> list[str]:
    before, after = _as_dict(before, "before"), _as_dict(after, "after")
    special = _SPECIAL.get(action)
    if special is not None:
        found = special(before, after)
        if found is not None:
            return found
    if not after:
        return _state(before)
    return _diff(before, after)


def value(v) -> str:
    """One value as text: strings as given, numbers exactly (repr), lists and dicts spelled out."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v if v else '""'
    if isinstance(v, list | tuple):
        return ", ".join(item(i) for i in v) if v else "none"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {value(x)}" for k, x in v.items()) if v else "none"
    return str(v)


def item(v) -> str:
    """One member of a list: files, parents, datasets and metrics by their known shapes."""
    if not isinstance(v, dict):
        return value(v)
    if "path" in v:
        sha = v.get("sha256")
        return f"{v['path']} (sha256 {sha[:SHA_SHOWN]}…)" if isinstance(sha, str) else v["path"]
    if "model" in v and set(v) <= {"model", "version", "version_id", "relation"}:
        shown = value(v["model"])
        if v.get("version") is not None:
            shown += f" v{v['version']}"
        return f"{shown} ({v['relation']})" if v.get("relation") else shown
    if "name" in v and "value" in v:
        split = f"@{v['split']}" if v.get("split") else ""
        return f"{v['name']}{split} = {value(v['value'])}"
    if "name" in v and "role" in v and len(v) == 2:
        return f"{v['name']} ({v['role']})"
    return "{" + value(v) + "}"


def _as_dict(state, key: str) -> dict:
    if state is None:
        return {}
    return state if isinstance(state, dict) else {key: state}


def _shown(key: str, v) -> str:
    if key == "status" and isinstance(v, str):
        return v.replace("_", " ")
    return value(v)


def _state(state: dict) -> list[str]:
    out = []
    for key, v in state.items():
        if isinstance(v, dict) and v:
            out += [f"{key}: {k} = {value(x)}" for k, x in v.items()]
        else:
            out.append(f"{key}: {_shown(key, v)}")
    return out


def _diff(before: dict, after: dict) -> list[str]:
    out = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key not in before:
            out += _added(key, after[key])
        elif key not in after:
            out.append(f"{key}: {_shown(key, before[key])} → —")
        else:
            out += _changed(key, before[key], after[key])
    return out


def _added(key: str, v) -> list[str]:
    if isinstance(v, list) and v:
        return [f"{key}: + {item(i)}" for i in v]
    if isinstance(v, dict) and v:
        return [f"{key}: {k} = {value(x)}" for k, x in v.items()]
    return [f"{key}: {_shown(key, v)}"]


def _changed(key: str, old, new) -> list[str]:
    if old == new:
        return [f"{key}: {_shown(key, new)}"]  # context, e.g. the alias or the principal
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in [*old, *(k for k in new if k not in old)]:
            if k not in new:
                out.append(f"{key}: − {k} = {value(old[k])}")
            elif k not in old:
                out.append(f"{key}: + {k} = {value(new[k])}")
            elif old[k] != new[k]:
                out.append(f"{key}: {k}: {value(old[k])} → {value(new[k])}")
        return out
    if _metrics(old) is not None and _metrics(new) is not None:
        return _changed(key, _metrics(old), _metrics(new))
    if isinstance(old, list) and isinstance(new, list):
        gone = [i for i in old if i not in new]
        came = [i for i in new if i not in old]
        if not gone and not came:
            return [f"{key}: {value(old)} → {value(new)}"]  # reordered
        return [f"{key}: − {item(i)}" for i in gone] + [f"{key}: + {item(i)}" for i in came]
    return [f"{key}: {_shown(key, old)} → {_shown(key, new)}"]


def _metrics(v) -> dict | None:
    """A list of metrics ({"name", "value", "split"}) as {name@split: value}, else None."""
    if not isinstance(v, list) or not all(
        isinstance(m, dict) and set(m) <= {"name", "value", "split"} and "name" in m for m in v
    ):
        return None
    return {m["name"] + (f"@{m['split']}" if m.get("split") else ""): m.get("value") for m in v}


def _alias(before: dict, after: dict) -> list[str] | None:
    name = after.get("alias", before.get("alias"))
    if not isinstance(name, str):
        return None
    old, new = before.get("version"), after.get("version")
    if new is None:  # removed (a signed removal's event carries its signature in ``after``)
        return [f"{name}: v{old} removed"]
    return [f"{name}: {f'v{old}' if old is not None else '—'} → v{new}"]


def _artifact_deleted(before: dict, after: dict) -> list[str] | None:
    if "path" not in before:
        return None
    return [f"files: − {item(before)}", *_diff({}, after)]


_SPECIAL = {
    "alias.moved": _alias,
    "alias.rolled_back": _alias,
    "alias.removed": _alias,
    "artifact.deleted": _artifact_deleted,
}
