"""How long the access helpers take (models_app/access.py), in the process, on a registry
where grants are many: the questions every page and API call asks about a user's roles.

Each checkout measured (this one, and with --compare another, e.g. a worktree of main) runs in
a process of its own against a fresh database of its own, filled the same way: --models models
owned by 20 users who manage 100 each (10% internal, the rest private), a measured user holding
roles on 300 private models directly and on more through three teams, and 100 other users and
10 other teams holding view on some; then ANALYZEd. Grants are written with guardian's
assign_perm, so any checkout's code reads them from wherever it keeps them. Timed, in ms per
call of the Python helper (the query and everything around it):

- roles on one model:  roles_for(user, model), for a model granted directly, one granted
  through a team only, one not granted
- model lookup:        get_model_for_user(user, slug), the fetch every model page and API call
  starts with (the model row, owner, team and the user's grants in one statement)
- visible models:      the ids of visible_models(user) (800 of 2,000)
- models with a role:  the ids of models_with_role(user, Role.EDIT) and (Role.REVIEW)

Rounds alternate between the checkouts (and, within one, between the operations), so a slower
moment of the shared machine hits both; a first round is discarded as warm-up. Prints the
median and 95th percentile of each, then EXPLAIN ANALYZE of the visible-models query.

    .venv/bin/python bench/access_queries.py [--models 2000] [--reps 1000] [--backend sqlite]
    git worktree add /tmp/before main
    .venv/bin/python bench/access_queries.py --compare /tmp/before
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _django import psql, set_up_django

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 10


# ---------------------------------------------------------------------------------------------
# One checkout, in its own process (--serve): fills its database, then answers the driver's
# commands on stdin ("round N", "explain", "quit") with one JSON line each on stdout.


def populate(n_models: int, seed: int = 13):
    """The registry described above; returns the measured user and three of the models."""
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from guardian.shortcuts import assign_perm

    from models_app.access import Role, roles_for
    from models_app.models import RegisteredModel

    rng = random.Random(seed)
    owners = User.objects.bulk_create([User(username=f"owner-{i}") for i in range(20)])
    others = User.objects.bulk_create([User(username=f"user-{i}") for i in range(100)])
    user = User.objects.create(username="bench")
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"model-{i:05d}",
            name_key=f"model-{i:05d}",
            slug=f"model-{i:05d}",
            owner=owners[i % len(owners)],
            visibility="internal" if i % 10 == 0 else "private",
        )
        for i in range(n_models)
    )
    ids = [m.pk for m in models]

    def grant(principal, role: Role, model_ids) -> None:
        chosen = RegisteredModel.objects.filter(pk__in=list(model_ids))
        for implied in role.implied:
            assign_perm(implied.perm, principal, chosen)

    for i, owner in enumerate(owners):  # every creator manages what it created
        grant(owner, Role.MANAGE, ids[i :: len(owners)])
    private = [m.pk for m in models if m.visibility == "private"]
    direct = rng.sample(private, 300)
    grant(user, Role.VIEW, direct[:150])
    grant(user, Role.EDIT, direct[150:250])
    grant(user, Role.REVIEW, direct[250:])
    teams = Group.objects.bulk_create([Group(name=f"team-{i}") for i in range(13)])
    for team in teams[:3]:
        team.user_set.add(user, *rng.sample(others, 10))
        grant(team, Role.VIEW, rng.sample(private, 100))
        grant(team, Role.REVIEW, rng.sample(private, 30))
    for team in teams[3:]:
        team.user_set.add(*rng.sample(others, 10))
        grant(team, Role.VIEW, rng.sample(ids, 100))
    for other in others:
        grant(other, Role.VIEW, rng.sample(ids, 50))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    not_direct = [m for m in models if m.visibility == "private" and m.pk not in direct]
    samples = {
        "direct": next(m for m in models if m.pk == direct[150]),  # edit, granted directly
        "team": next(m for m in not_direct if roles_for(user, m)),
        "none": next(m for m in not_direct if not roles_for(user, m)),
    }
    return user, samples


def operations(user, samples: dict) -> dict:
    from models_app.access import (
        Role,
        get_model_for_user,
        models_with_role,
        roles_for,
        visible_models,
    )

    def ids(queryset) -> list[int]:
        return list(queryset.values_list("pk", flat=True))

    slug = samples["direct"].slug
    ops = {f"roles on one model ({k})": lambda m=m: roles_for(user, m) for k, m in samples.items()}
    ops["model lookup"] = lambda: get_model_for_user(user, slug)
    ops["visible models (ids)"] = lambda: ids(visible_models(user))
    ops["models with edit (ids)"] = lambda: ids(models_with_role(user, Role.EDIT))
    ops["models with review (ids)"] = lambda: ids(models_with_role(user, Role.REVIEW))
    return ops


def grant_rows() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if "objectpermission" in table:
                cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
                counts[table] = cursor.fetchone()[0]
    return counts


def serve(args) -> None:
    with tempfile.TemporaryDirectory(prefix="access-bench-") as data_dir:
        set_up_django(Path(args.root), args.backend, args.database, data_dir)
        from django.db import connection

        from models_app.access import visible_models

        user, samples = populate(args.models)
        ops = operations(user, samples)
        reply({"grant_rows": grant_rows(), "visible": visible_models(user).count()})
        for line in sys.stdin:
            command, *rest = line.split()
            if command == "round":
                times: dict[str, list[float]] = {name: [] for name in ops}
                for name, op in ops.items():
                    for _ in range(int(rest[0])):
                        start = time.perf_counter_ns()
                        op()
                        times[name].append((time.perf_counter_ns() - start) / 1e6)
                reply(times)
            elif command == "explain":
                query = visible_models(user).values_list("pk", flat=True)
                analyze = {"analyze": True} if connection.vendor == "postgresql" else {}
                reply({"sql": str(query.query), "plan": query.explain(**analyze)})
            else:
                break
        connection.close()
    if args.backend == "postgres":
        psql(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")


def reply(value) -> None:
    print("REPLY " + json.dumps(value), flush=True)


# ---------------------------------------------------------------------------------------------
# The driver: one child per checkout, rounds alternating between them.


class Checkout:
    def __init__(self, root: Path, database: str, args):
        self.root = root
        head = ["git", "-C", str(root), "log", "-1", "--format=%h %s"]
        self.label = subprocess.run(head, capture_output=True, text=True).stdout.strip()[:60]
        status = ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"]
        if subprocess.run(status, capture_output=True, text=True).stdout.strip():
            self.label = self.label.replace(" ", "+ (uncommitted changes) ", 1)
        command = [
            sys.executable, __file__, "--serve", "--root", str(root), "--database", database,
            "--models", str(args.models), "--backend", args.backend,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.times: dict[str, list[float]] = {}

    def ask(self, command: str | None = None):
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("REPLY "):
                return json.loads(line[len("REPLY ") :])
        raise RuntimeError(f"{self.root}: the benchmark process stopped")

    def round(self, calls: int, keep: bool = True) -> None:
        for name, values in self.ask(f"round {calls}").items():
            if keep:
                self.times.setdefault(name, []).extend(values)

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=1000, help="calls of each operation")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--compare", metavar="DIR", help="another checkout to measure alongside")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--database", default="access_bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return

    checkouts = [Checkout(ROOT, "access_bench", args)]
    if args.compare:
        checkouts.append(Checkout(Path(args.compare).resolve(), "access_bench_compare", args))
    try:
        for c in checkouts:
            info = c.ask()
            print(f"{c.label}\n  {args.backend}, {args.models} models, {info['visible']} visible")
            print(f"  grant rows: {info['grant_rows']}")
        per_round = max(1, args.reps // ROUNDS)
        for c in checkouts:
            c.round(per_round, keep=False)  # warm-up: prepared statements, caches
        for i in range(ROUNDS):
            for c in checkouts[:: 1 if i % 2 == 0 else -1]:
                c.round(per_round)
        header = " | ".join(f"{c.label.split()[0]} median | p95" for c in checkouts)
        print(f"\n| ms per call ({per_round * ROUNDS} calls each) | {header} |")
        print("|---|" + "---|---|" * len(checkouts))
        for name in checkouts[0].times:
            cells = " | ".join(
                f"{statistics.median(c.times[name]):.3f} | {p95(c.times[name]):.3f}"
                for c in checkouts
            )
            print(f"| {name} | {cells} |")
        for c in checkouts:
            explained = c.ask("explain")
            print(f"\n{c.label}: visible models\n{explained['sql']}\n{explained['plan']}")
    finally:
        for c in checkouts:
            c.close()


if __name__ == "__main__":
    main()
