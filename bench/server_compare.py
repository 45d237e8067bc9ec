"""Compare the candidate production servers on this machine: the API and bare Flask under each, beside the yardstick.

Each candidate of `servers.COMMANDS` serves the API and the bare Flask route at once; for each,
wrk drives the bare route, GET /payments/<id> and POST /payments, each run between two runs of
the fixed yardstick (bare Flask under gunicorn's defaults), so every figure is also a ratio to
the yardstick. Rounds take the candidates in alternating order. A phase of `make bench`;
`python -m bench.server_compare` runs it alone on a small database (about 7 min).
"""

import statistics
import sys
from dataclasses import asdict

from bench import servers, wrk

LOADS = ("ceiling", "get_payment", "post")
CEILING_APP = "bench.ceiling_app:create_app()"


def compare(bench, rounds: int, duration: int) -> list[dict]:
    """Measure every candidate server `rounds` times; return one row per (round, server, load)."""
    yardstick = bench.start("yardstick", CEILING_APP, bench.plan.yardstick_port, "/hello", servers.YARDSTICK)
    rows = []
    try:
        candidates = list(servers.COMMANDS.items())
        for number in range(rounds):
            for key, flavour in candidates if number % 2 == 0 else reversed(candidates):
                rows += _measure(bench, yardstick, key, flavour, duration)
    finally:
        bench.stop(yardstick)
    return rows


def _measure(bench, yardstick, key: str, flavour: servers.Flavour, duration: int) -> list[dict]:
    """Serve the API and the bare route under one candidate; run each load between two yardstick runs."""
    plan = bench.plan
    api = bench.start(f"api-{key}", "app:create_app()", plan.api_port, "/health", flavour)
    ceiling = bench.start(f"ceiling-{key}", CEILING_APP, plan.ceiling_port, "/hello", flavour)
    rows = []
    try:
        for load in LOADS:  # warm-up: pools, buffer pool pages
            _run(bench, load, api, ceiling, 1)
        before = bench.yardstick(yardstick, duration)
        for load in LOADS:
            result = _run(bench, load, api, ceiling, duration)
            after = bench.yardstick(yardstick, duration)
            ratio = result.rps / statistics.mean((before.rps, after.rps))
            rows.append({"server": key, "name": flavour.name, "workers": flavour.workers, "load": load,
                         "ratio": ratio, **asdict(result)})  # fmt: skip
            print(
                f"bench:   {flavour.name:28} {load:12} {result.rps:8,.0f} req/s  {ratio:.2f} × yardstick"
                f"  p99 {result.p99_ms:6.1f} ms  errors {result.errors}",
                flush=True,
            )
            before = after
    finally:
        bench.stop(ceiling)
        bench.stop(api)
    return rows


def _run(bench, load: str, api, ceiling, duration: int) -> wrk.Result:
    """Run one load: the bare route on the candidate's ceiling server, else an API endpoint."""
    if load == "ceiling":
        return bench.ceiling(ceiling, duration)
    return bench.run_load(load, api, duration)


def summary(rows: list[dict]) -> dict:
    """Return, per (server, load), the median req/s, ratio and p99, and the error count."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["server"], row["load"]), []).append(row)
    return {
        group: {
            "name": runs[0]["name"],
            "workers": runs[0]["workers"],
            "rps": statistics.median(run["rps"] for run in runs),
            "ratio": statistics.median(run["ratio"] for run in runs),
            "p99_ms": statistics.median(run["p99_ms"] for run in runs),
            "errors": sum(run["non_2xx"] + run["socket_errors"] for run in runs),
        }
        for group, runs in groups.items()
    }


def main() -> None:
    """Run the comparison alone on a small database of its own, and print the summary."""
    from bench.bench import Benchmark, Plan

    plan = Plan.from_env(quick=True)
    plan.check()
    bench = Benchmark(plan)
    try:
        bench.create_database()
        bench.load_base()
        bench.load(plan.small + 1, plan.payments)
        rows = compare(bench, plan.server_rounds or 2, plan.server_duration)
        bench.figures["servers"] = rows
        bench.save()
        for (_, load), row in summary(rows).items():
            print(f"{row['name']:28} {load:12} {row['rps']:8,.0f} req/s {row['ratio']:.2f} × yardstick"
                  f"  p99 {row['p99_ms']:.1f} ms  errors {row['errors']}")  # fmt: skip
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
