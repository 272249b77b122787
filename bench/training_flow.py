"""An ordinary MLflow training script against the registry and a stock `mlflow server`, in one run.

The script of ../shared/mlflow-tracking.md (bench/_training_run.py: set_experiment, start_run,
params, metrics, a tag, a pandas input dataset, `mlflow.pyfunc.log_model(...,
registered_model_name=...)` of a PythonModel, an alias, `load_model("models:/…@champion")` and
predict, `register_model("runs:/…")`) runs with the real client (mlflow-skinny 3.17.2 from the
project's venv), in a fresh process per run, rounds alternating registry, MLflow, registry, …
Client imports happen before the clock starts and are reported on their own row. Per phase:
p50/p95 in ms; the headline is script start (after imports) to the registered version
(`log_model` returned). A phase that fails is reported as failed with its error's first line and
the run goes on. The HTTP calls each server received per run are counted from its access log.

The registry: gunicorn as README runs it (2 balanced gthread workers), user `bench` with a write
token (MLFLOW_TRACKING_TOKEN). MLflow 3.17.2 from bench/.mlflow-venv: `mlflow server
--workers 2 --serve-artifacts`, artifacts in a temp dir. Both on PostgreSQL (fresh databases
`registry_trainbench`, `mlflow_trainbench`) or SQLite (`--backend sqlite`). Each server first
gets one unmeasured run (it creates the experiment and the model; its headline is in the notes).

    .venv/bin/python bench/training_flow.py                     # 20 rounds, 1,000 × 10 frame
    .venv/bin/python bench/training_flow.py --smoke             # 2 rounds, SQLite, 50 rows
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import PYTHON, ROOT  # noqa: E402
from mlflow_compare import mlflow_server, pct, registry_server  # noqa: E402

SCRIPT = ROOT / "bench" / "_training_run.py"
HEADLINE = "**script start → registered version**"
PHASES = [
    "set_experiment + start_run",
    "log params, metrics, tag, input",
    "log_model: upload + register",
    HEADLINE,
    "end run",
    "set alias champion",
    "load_model @champion + predict",
    'register_model "runs:/…"',
    "whole script",
]
METHODS = (b'"GET ', b'"POST ', b'"PUT ', b'"PATCH ', b'"DELETE ', b'"HEAD ')


def requests_logged(access_log: Path) -> int:
    """Requests in an access log so far (gunicorn's and uvicorn's both quote the request line)."""
    lines = access_log.read_bytes().splitlines()
    return sum(1 for line in lines if any(m in line for m in METHODS))


def client_env(url: str, token: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=url, PYTHONWARNINGS="ignore")
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    return env


def one_run(server, access_log: Path, rows: int) -> dict:
    """One script run in a fresh process; its timings and the requests the server logged."""
    token = server.headers.get("Authorization", "").removeprefix("Bearer ") or None
    before = requests_logged(access_log)
    with tempfile.TemporaryDirectory(prefix="trainbench-") as cwd:  # mlruns-free, no leftovers
        done = subprocess.run(
            [PYTHON, str(SCRIPT), str(rows)], cwd=cwd, env=client_env(server.url, token),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    lines = [x for x in done.stdout.splitlines() if x.startswith("TIMINGS ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{server.name}: the script crashed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("TIMINGS "))
    time.sleep(0.3)  # the last answer's log line may follow the answer
    result["requests"] = requests_logged(access_log) - before
    return result


def summarize(runs: list[dict]) -> dict:
    """Per phase: the successful durations, the errors seen (first line, count) and the
    durations of the failed attempts."""
    out = {}
    for name in PHASES:
        ok, failed, spent = [], {}, []
        for r in runs:
            if name == HEADLINE:
                value, error = r["to_registered_ms"], None
                if value is None:
                    error = "no registered version (a phase before it failed)"
            elif name == "whole script":
                value, error = r["total_ms"], None
            else:
                value, error = r["phases"].get(name), r["errors"].get(name)
                if value is None:
                    error = "not reached"
            if error:
                failed[error] = failed.get(error, 0) + 1
                if value is not None:
                    spent.append(value)
            else:
                ok.append(value)
        out[name] = (ok, failed, spent)
    out["client imports (not timed above)"] = ([r["imports_ms"] for r in runs], {}, [])
    out["HTTP calls received per run"] = ([r["requests"] for r in runs], {}, [])
    return out


def cell(row: tuple, total: int, q: int, digits: int = 1) -> str:
    values, failed, spent = row
    if not values:
        return f"failed after {pct(spent, q):.{digits}f}" if spent else "failed"
    text = f"{pct(values, q):.{digits}f}"
    return text + (f" ({sum(failed.values())}/{total} failed)" if failed else "")


def table(summaries: dict, rounds: int) -> list[str]:
    names = list(summaries)
    head = "| phase | " + " | ".join(f"{n} p50 | {n} p95" for n in names)
    rule = "|---|" + "---:|---:|" * len(names)
    if len(names) == 2:
        head += " | registry ÷ mlflow (p50) |"
        rule += "---:|"
    lines = [head + ("" if len(names) == 2 else " |"), rule]
    for row in next(iter(summaries.values())):
        digits = 0 if row.startswith("HTTP") else 1
        cells = []
        for n in names:
            cells += [cell(summaries[n][row], rounds, q, digits) for q in (50, 95)]
        line = f"| {row} | " + " | ".join(cells) + " |"
        if len(names) == 2 and row.startswith("client imports"):
            line += " – |"  # the same client either way
        elif len(names) == 2:
            a, b = summaries["registry"][row][0], summaries["mlflow"][row][0]
            ratio = f"{pct(a, 50) / pct(b, 50):.2f}" if a and b and pct(b, 50) else "–"
            line += f" {ratio} |"
        lines.append(line)
    return lines


def failures(summaries: dict) -> list[str]:
    out = []
    for server, summary in summaries.items():
        for row, (_, failed, _) in summary.items():
            for error, count in failed.items():
                out.append(f"- {server}, {row} ({count}×): {error}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000, help="rows of the 10-column frame")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--only", choices=["registry", "mlflow"], default=None)
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--smoke", action="store_true", help="2 rounds, SQLite, 50 rows")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.backend, args.rows = 2, "sqlite", 50

    logs = Path(tempfile.mkdtemp(prefix="trainbench-logs-"))
    with ExitStack() as stack:
        servers = []  # (server, its access log)
        if args.only in (None, "registry"):
            log = logs / "registry.log"
            servers.append((stack.enter_context(registry_server(
                args.backend, database="registry_trainbench", access_log=log)), log))  # fmt: skip
        if args.only in (None, "mlflow"):
            log = logs / "mlflow.log"
            servers.append((stack.enter_context(mlflow_server(
                args.backend, database="mlflow_trainbench", access_log=log)), log))  # fmt: skip
        # One unmeasured run each (the smoke run skips it): it creates the experiment and model.
        first = {} if args.smoke else {s.name: one_run(s, log, args.rows) for s, log in servers}
        runs: dict[str, list[dict]] = {s.name: [] for s, _ in servers}
        for r in range(args.rounds):  # alternating: a slower moment of the machine hits both
            for s, log in servers:
                runs[s.name].append(one_run(s, log, args.rows))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)

    summaries = {name: summarize(rs) for name, rs in runs.items()}
    text = [
        f"Training flow: {args.rounds} rounds per server, alternating, {args.backend} backends, "
        f"a {args.rows:,} × 10 pandas frame; times in ms (p50/p95), client imports excluded.",
        "",
        *table(summaries, args.rounds),
        "",
        "The alias `champion` is an ordinary alias, set by the client on a version still in "
        "draft (the registry needs no approval for it).",
    ]
    if first:
        text[-1] += (
            " Unmeasured first run (creates the experiment and the model), script start → "
            "registered version: "
            + ", ".join(
                f"{n} {r['to_registered_ms']:.0f} ms" if r["to_registered_ms"] else f"{n} failed"
                for n, r in first.items()
            )
            + "."
        )
    if problems := failures(summaries):
        text += ["", "Failed phases (first line of the error):", *problems]
    print("\n".join(text))
    if args.out:
        args.out.write_text("\n".join(text) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
