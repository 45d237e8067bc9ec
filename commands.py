"""Operational CLI commands: `init-db`, the API key commands, `rotate-keys`, purges, the webhook worker."""

import signal
from datetime import timedelta

import click
import mysql.connector
from flask import Flask, current_app
from flask.cli import with_appcontext

from db import autocommit, get_db, init_db, transaction
from models import api_key_model, event_model, idempotency_model
from services import api_keys
from services.key_rotation import RotationReport, rotate_keys
from services.webhook_delivery import DeliveryWorker
from utils.errors import ServerMisconfigured, ServiceUnavailable
from utils.formatting import utc_now


def check_card_keys_command_line() -> None:
    """Connect, which checks the card keys, and report a refusal or an unreachable database as a command error."""
    try:
        get_db()
    except ServerMisconfigured as error:
        raise click.ClickException(error.explanation) from None
    except ServiceUnavailable as error:
        raise click.ClickException(f"Could not reach the database: {error.detail}") from None


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database and tables from schema.sql (safe to run again)."""
    try:
        init_db(current_app.config)
        check_card_keys_command_line()
    except mysql.connector.Error as error:
        raise click.ClickException(f"Could not reach the database: {error.msg}") from error
    click.echo(f"Schema applied to database {current_app.config['DB_NAME']!r}.")
    _create_first_api_key()


def _create_first_api_key() -> None:
    """On a database that never had an API key, make one with every scope and show it, this once."""
    with transaction() as cursor:
        if api_key_model.any_key_exists(cursor, lock=True):
            return
        key = api_keys.create_key(cursor, "first key", api_keys.SCOPES, None, utc_now())
    click.echo(
        "\nThis database had no API key, so here is its first one, with every scope. It is shown this once:\n\n"
        f"    {key}\n\n"
        "Send it as `Authorization: Bearer <key>` (in Swagger UI: Authorize). Make more, with fewer scopes,\n"
        "with `flask --app app create-api-key --name NAME --scope SCOPE`; list them with list-api-keys.\n"
    )


def _key_name(value: str) -> str:
    """Check an API key's name: 1 to 100 printable characters."""
    value = value.strip()
    if not 1 <= len(value) <= 100 or not value.isprintable():
        raise click.BadParameter("must be 1 to 100 printable characters")
    return value


@click.command("create-api-key")
@click.option("--name", required=True, callback=lambda ctx, param, value: _key_name(value), help="What the key is for.")
@click.option(
    "--scope", "scopes", multiple=True, type=click.Choice(api_keys.SCOPES), help="Repeat for several; default: all."
)
@click.option(
    "--expires-in", "expires_in", type=click.IntRange(1, 36500), help="Days until the key expires; default: never."
)
@with_appcontext
def create_api_key_command(name: str, scopes: tuple[str, ...], expires_in: int | None) -> None:
    """Make an API key and print it, alone on one line; it is never shown again."""
    check_card_keys_command_line()
    with autocommit() as cursor:
        key = api_keys.create_key(cursor, name, scopes or api_keys.SCOPES, expires_in, utc_now())
    click.echo(key)


@click.command("list-api-keys")
@with_appcontext
def list_api_keys_command() -> None:
    """List the API keys: id, name, public prefix, scopes, created, last used, expiry, revoked."""
    check_card_keys_command_line()
    with autocommit() as cursor:
        keys = api_key_model.list_keys(cursor)
    header = ("id", "name", "prefix", "scopes", "created", "last used", "expires", "revoked")
    rows = [header] + [
        (
            str(key["id"]),
            key["name"],
            key["prefix"] + "…",
            ",".join(key["scopes"].split()),
            _minute(key["created_at"]),
            _minute(key["last_used_at"]),
            _minute(key["expires_at"]),
            _minute(key["revoked_at"]),
        )
        for key in keys
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _minute(moment) -> str:
    """Write a time to the minute (UTC), or '-' for none."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@click.command("revoke-api-key")
@click.argument("key_id", type=click.IntRange(min=1))
@with_appcontext
def revoke_api_key_command(key_id: int) -> None:
    """Revoke an API key: every server refuses it within 10 seconds."""
    check_card_keys_command_line()
    with autocommit() as cursor:
        if api_key_model.revoke_key(cursor, key_id, utc_now()):
            click.echo(f"Revoked API key {key_id}; every server refuses it within 10 seconds.")
            return
        if api_key_model.get_key(cursor, key_id) is None:
            raise click.ClickException(f"No API key has id {key_id}.")
    click.echo(f"API key {key_id} was already revoked.")


def _print_progress(report: RotationReport) -> None:
    """Print where a rotation has got to, so an interrupted run can resume with --after."""
    click.echo(
        f"rotated {report.rotated}, already current {report.current},"
        f" failed {len(report.failed)}; up to id {report.last_id}"
    )


@click.command("rotate-keys")
@click.option("--after", default=0, type=click.IntRange(min=0), show_default=True, help="Resume after this payment id.")
@click.option(
    "--batch-size", default=500, type=click.IntRange(1, 10000), show_default=True, help="Rows per transaction."
)
@with_appcontext
def rotate_keys_command(after: int, batch_size: int) -> None:
    """Re-encrypt card data under the newest key versions; check every value's tag and report failures."""
    check_card_keys_command_line()
    keys = current_app.extensions["card_keys"]
    report = rotate_keys(transaction, keys, after=after, batch_size=batch_size, progress=_print_progress)
    click.echo(
        f"Done: {report.rotated} values re-encrypted, {report.current} already current,"
        f" {report.skipped_changed} changed meanwhile (left as written), {len(report.failed)} failed."
    )
    for payment_id, column in report.failed:
        click.echo(f"  payment {payment_id}: {column} failed its authentication tag or names an unknown key", err=True)
    if report.failed:
        raise SystemExit(1)


@click.command("purge-idempotency-keys")
@with_appcontext
def purge_idempotency_keys_command() -> None:
    """Delete Idempotency-Key records older than their 24-hour lifetime."""
    check_card_keys_command_line()
    before = utc_now() - timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"])
    with autocommit() as cursor:
        deleted = idempotency_model.purge_keys(cursor, before)
    click.echo(f"Deleted {deleted} expired idempotency records.")


@click.command("purge-events")
@click.option("--older-than", "days", required=True, type=click.IntRange(1, 36500), help="Retention, in days.")
@with_appcontext
def purge_events_command(days: int) -> None:
    """Delete events older than a retention period, with their webhook deliveries; the only way events go."""
    check_card_keys_command_line()
    before = utc_now() - timedelta(days=days)
    deleted = 0
    while True:
        with transaction() as cursor:
            batch = event_model.purge_events(cursor, before)
        deleted += batch
        if batch < event_model.PURGE_BATCH:
            break
    click.echo(f"Deleted {deleted} events created before {before:%Y-%m-%d %H:%M} UTC.")


@click.command("deliver-webhooks")
@with_appcontext
def deliver_webhooks_command() -> None:
    """Send the webhooks that are due, until SIGTERM or Ctrl-C; run as many workers as you like, on any hosts."""
    worker = DeliveryWorker(current_app.config, current_app.extensions["webhook_secret_keys"])
    # On either signal the worker finishes and records what it is sending, then returns.
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    click.echo(f"Webhook worker {worker.name} delivering; stop it with SIGTERM or Ctrl-C.", err=True)
    worker.run()


def init_app(app: Flask) -> None:
    """Register the operational commands."""
    app.cli.add_command(init_db_command)
    app.cli.add_command(create_api_key_command)
    app.cli.add_command(list_api_keys_command)
    app.cli.add_command(revoke_api_key_command)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(purge_idempotency_keys_command)
    app.cli.add_command(purge_events_command)
    app.cli.add_command(deliver_webhooks_command)
