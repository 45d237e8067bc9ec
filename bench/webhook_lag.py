"""Webhook delivery lag under full-speed writes: a receiver subscribed to every event, wrk posting payments.

Lag is from the delivery's creation in the database (the trigger's UTC_TIMESTAMP(3), in the
write's transaction, a fraction of a millisecond before its commit) to the receiver having the
whole request (its wall clock; the same machine). Every delivery is matched to what arrived, so
the figures also say whether any event was lost or sent twice.

    python -m bench.webhook_lag    # against a server and worker of its own, on a throwaway database
"""

import statistics
import time
from datetime import UTC, datetime

import mysql.connector
import requests

from bench import wrk
from db import connection_settings
from tests.webhook_receiver import Receiver, start_worker, stop_worker


def percentile(values: list[float], fraction: float) -> float:
    """Return a nearest-rank percentile of some values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def measure(settings: dict, base_url: str, auth: dict, load: wrk.Load, plan, log_dir) -> dict:
    """Subscribe a receiver, start one worker, write for `plan.webhook_seconds`; return the lag figures."""
    receiver = Receiver().start()
    endpoint = requests.post(
        f"{base_url}/webhook-endpoints", json={"url": receiver.url, "event_types": ["*"]}, headers=auth, timeout=10
    )
    endpoint.raise_for_status()
    endpoint = endpoint.json()
    receiver.secrets.append(endpoint["secret"])
    worker = start_worker(settings, log_dir / "webhook-worker.log")
    try:
        result = wrk.run("webhooks", base_url, load, plan.webhook_seconds, plan.connections, plan.threads, log_dir)
        queued = _deliveries(settings, endpoint["id"])
        arrived = receiver.wait_for(lambda r: {int(i) for i in r.ids() if i} >= set(queued), 120)
    finally:
        stop_worker(worker)
        receiver.stop()
        requests.delete(f"{base_url}/webhook-endpoints/{endpoint['id']}", headers=auth, timeout=10)
    return _figures(result, queued, receiver, arrived)


def _deliveries(settings: dict, endpoint_id: int) -> dict[int, datetime]:
    """Return {event id: when its delivery was queued (UTC)} for an endpoint."""
    cnx = mysql.connector.connect(**connection_settings(settings))
    try:
        cursor = cnx.cursor()
        cursor.execute("SELECT event_id, created_at FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint_id,))
        return {event_id: created.replace(tzinfo=UTC) for event_id, created in cursor.fetchall()}
    finally:
        cnx.close()


def _figures(result: wrk.Result, queued: dict[int, datetime], receiver: Receiver, arrived: bool) -> dict:
    """Return the writes, what arrived, and the lag percentiles in milliseconds."""
    first: dict[int, float] = {}
    for item in receiver.received:
        first.setdefault(int(item.webhook_id), item.wall)
    lags = [(first[event] - queued[event].timestamp()) * 1000 for event in queued if event in first]
    return {
        "writes_per_s": result.rps,
        "write_p99_ms": result.p99_ms,
        "write_errors": result.errors,
        "events": len(queued),
        "arrived": len(set(first) & set(queued)),
        "all_arrived": arrived,
        "sent_twice": len(receiver.received) - len(first),
        "unverified": sum(1 for item in receiver.received if item.verified_by is None),
        "lag_p50_ms": percentile(lags, 0.5) if lags else None,
        "lag_p99_ms": percentile(lags, 0.99) if lags else None,
        "lag_max_ms": max(lags) if lags else None,
        "lag_mean_ms": statistics.fmean(lags) if lags else None,
    }


def main() -> None:
    """Measure the lag on a throwaway database with a server of its own."""
    from bench.bench import Benchmark, Plan

    plan = Plan.from_env()
    benchmark = Benchmark(plan)
    try:
        benchmark.create_database()
        benchmark.load_base()
        api = benchmark.start("api", "app:create_app()", plan.api_port, "/health", plan.workers)
        time.sleep(1)
        figures = benchmark.webhook_lag(api)
        print(figures, flush=True)
    finally:
        benchmark.cleanup()


if __name__ == "__main__":
    main()
