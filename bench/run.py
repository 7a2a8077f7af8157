"""Run the benchmarks side by side, print one table, and write it as JSON.

    make bench BENCH_ARGS="--only trigger,idle"          # or: python -m bench.run ...
    python -m bench.run --quick                          # small sizes, a few minutes

Benchmarks (each in a fresh child process, so one cannot slow the next one down):

``trigger``  :mod:`bench.trigger_drain`: MNSMessageTrigger draining a backlog vs a naive loop
``idle``     :mod:`bench.idle_cost`: CPU and queue calls of idle triggers on empty queues
``report``   :mod:`bench.report_quota`: reports under the published ReportTask* quota
``e2e``      :mod:`bench.end_to_end`: executions through a real Airflow vs two baselines

The JSON goes to ``bench/results/<name>.json`` (git-ignored); the table with the command, the
date and the machine goes to ``docs/benchmarks.md`` by hand, from what was measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("trigger", "idle", "report", "e2e")

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "trigger": [
        ("path", "path"),
        ("messages", "drained"),
        ("seconds", "s"),
        ("messages_per_second", "msg/s"),
        ("vs_naive", "x naive"),
        ("requests_per_message", "req/msg"),
        ("ms_per_event", "ms/event"),
        ("msg_per_s_first_10_events", "msg/s first 10 ev"),
        ("msg_per_s_last_10_events", "msg/s last 10 ev"),
        ("duplicates", "dup"),
    ],
    "idle": [
        ("mode", "mode"),
        ("triggers", "triggers"),
        ("window_seconds", "s"),
        ("triggerer_cpu_seconds", "triggerer CPU s"),
        ("triggerer_cpu_percent_of_a_core", "% core"),
        ("emulator_cpu_seconds", "emulator CPU s"),
        ("receive_calls_per_minute", "receives/min"),
        ("receive_calls_per_minute_per_queue", "/min/queue"),
    ],
    "report": [
        ("concurrency", "concurrency"),
        ("reports", "reports"),
        ("failures", "failed"),
        ("throttled_429", "429s"),
        ("seconds", "s"),
        ("reports_per_second", "reports/s"),
        ("best_seconds", "best s"),
        ("percent_of_quota", "% of quota"),
        ("executions", "executions"),
    ],
    "e2e": [
        ("mode", "mode"),
        ("executions", "executions"),
        ("succeeded", "succeeded"),
        ("median_seconds", "median s"),
        ("p95_seconds", "p95 s"),
        ("executions_per_minute", "exec/min"),
        ("wall_seconds", "wall s"),
        ("worker_runs", "runs"),
        ("duplicate_runs", "dup runs"),
        ("left_in_queue", "left in queue"),
    ],
}

_HOP_COLUMNS = [
    ("mode", "mode"),
    ("messages", "messages"),
    *((hop, f"{hop} s") for hop in ("received", "event", "run", "task", "last_task", "report", "deleted")),
    ("total", "sent->report s"),
]
SECTIONS: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {
    "e2e": [
        (
            "hops",
            "Where the time goes, N at once: seconds from the previous mark to this one, median / p95 "
            "(share of the median sent->report)",
            _HOP_COLUMNS,
        ),
        (
            "sequential",
            "One message on an idle stack: executions one after another",
            [
                ("mode", "mode"),
                ("executions", "executions"),
                ("succeeded", "succeeded"),
                ("p50_seconds", "p50 s"),
                ("p95_seconds", "p95 s"),
                ("max_seconds", "max s"),
            ],
        ),
        ("sequential_hops", "Where the time goes, one message at a time", _HOP_COLUMNS),
    ]
}
"""Further tables of a benchmark: (result key, title, columns)."""


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated: " + ", ".join(ORDER))
    parser.add_argument("--name", default="latest", help="results file bench/results/NAME.json")
    parser.add_argument("--quick", action="store_true", help="small sizes (development)")
    trigger = parser.add_argument_group("trigger")
    trigger.add_argument("--messages", type=int, default=10_000, help="backlog per path")
    trigger.add_argument("--drain-budget", type=float, default=300.0, help="seconds before a path is stopped")
    idle = parser.add_argument_group("idle")
    idle.add_argument("--idle-triggers", type=int, default=50)
    idle.add_argument("--idle-seconds", type=float, default=60.0)
    report = parser.add_argument_group("report")
    report.add_argument("--reports", type=int, default=100)
    report.add_argument("--report-concurrency", type=_csv_ints, default=(1, 8, 32), help="e.g. 1,8,32")
    e2e = parser.add_argument_group("e2e")
    e2e.add_argument("--executions", type=int, default=100)
    e2e.add_argument(
        "--e2e-modes",
        default="worker,rest,dispatch,watcher,restonetask,onetask",
        help="worker (plain polling worker), rest (worker DAG via REST), dispatch (one run per "
        "message), onetask (one run per message started from the triggerer by MNSDispatchTrigger, one-task "
        "worker: @task.fnf_callback), watcher "
        "(runs from asset events), restonetask (the one-task worker via REST)",
    )
    e2e.add_argument(
        "--e2e-sequential",
        type=int,
        default=20,
        help="executions one after another on the idle stack, per mode (0: none)",
    )
    e2e.add_argument("--e2e-timeout", type=float, default=1800.0, help="seconds per mode")
    e2e.add_argument(
        "--e2e-database",
        choices=("sqlite", "postgresql"),
        default="postgresql",
        help="Airflow's metadata database: postgresql (components as separate processes, a private "
        "PostgreSQL) or sqlite (airflow standalone)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    return parser


def _apply_quick(args: argparse.Namespace) -> None:
    args.messages = min(args.messages, 1_000)
    args.drain_budget = min(args.drain_budget, 60.0)
    args.idle_triggers = min(args.idle_triggers, 10)
    args.idle_seconds = min(args.idle_seconds, 25.0)
    args.reports = min(args.reports, 20)
    args.report_concurrency = args.report_concurrency[:2]
    args.executions = min(args.executions, 10)
    args.e2e_sequential = min(args.e2e_sequential, 3)


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one benchmark in this process."""
    echo: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    if name == "trigger":
        from bench import trigger_drain

        return trigger_drain.run(messages=args.messages, budget=args.drain_budget, echo=echo)
    if name == "idle":
        from bench import idle_cost

        return idle_cost.run(triggers=args.idle_triggers, seconds=args.idle_seconds, echo=echo)
    if name == "report":
        from bench import report_quota

        return report_quota.run(reports=args.reports, concurrencies=args.report_concurrency, echo=echo)
    if name == "e2e":
        from bench import end_to_end

        modes = tuple(m.strip() for m in args.e2e_modes.split(",") if m.strip())
        return end_to_end.run(
            executions=args.executions,
            modes=modes,
            timeout=args.e2e_timeout,
            database=args.e2e_database,
            sequential=args.e2e_sequential,
            echo=echo,
        )
    raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(ORDER)}")


def _run_child(name: str, argv: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "bench.run", *argv, "--child", name, "--child-out", str(out)]
        started = time.monotonic()
        code = subprocess.call(command)
        if code != 0 or not out.exists():
            return {"benchmark": name, "error": f"exited with status {code}", "rows": [], "goals": []}
        result: dict[str, Any] = json.loads(out.read_text())
        result["elapsed_seconds"] = round(time.monotonic() - started, 1)
        return result


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(name: str, result: dict[str, Any]) -> str:
    """A Markdown table of one benchmark's rows, then its goals."""
    lines = [f"### {name}: {result.get('benchmark', name)}", ""]
    if result.get("error"):
        lines.append(f"FAILED TO RUN: {result['error']}")
        return "\n".join(lines)
    lines.extend(_rows_table(COLUMNS[name], result["rows"]))
    for key, title, columns in SECTIONS.get(name, []):
        if result.get(key):
            lines.extend([f"{title}:", "", *_rows_table(columns, result[key])])
    for goal in result["goals"]:
        lines.append(f"- {'MET' if goal['met'] else 'NOT MET'}: {goal['goal']}: {goal['measured']}")
    return "\n".join(lines)


def _rows_table(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |")
    lines.append("")
    return lines


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        memory_kib = 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.quick:
        _apply_quick(args)
    if args.child:
        result = run_one(args.child, args)
        Path(args.child_out).write_text(json.dumps(result, indent=2))
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(ORDER)}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {
        "command": "python -m bench.run " + " ".join(argv),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": {},
    }
    for name in ORDER:
        if name in names:
            print(f"== {name}", flush=True)
            report["results"][name] = _run_child(name, argv)
    report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps(report, indent=2))
    print()
    print(f"Command: {report['command']}")
    print(
        f"Machine: {report['machine']['cpus']} CPUs, {report['machine']['cpu_model']}, "
        f"{report['machine']['memory_gib']} GiB, Python {report['machine']['python']}"
    )
    print(f"Started {report['started']}, finished {report['finished']}")
    print()
    for name, result in report["results"].items():
        print(table(name, result))
        print()
    print(f"JSON: {path}")
    failed = [n for n, r in report["results"].items() if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
