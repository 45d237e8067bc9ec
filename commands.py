"""Operational CLI commands: `flask --app app init-db`, `rotate-keys`, `purge-idempotency-keys`."""

from datetime import timedelta

import click
import mysql.connector
from flask import Flask, current_app
from flask.cli import with_appcontext

from db import autocommit, get_db, init_db, transaction
from models import idempotency_model
from services.key_rotation import RotationReport, rotate_keys
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


def init_app(app: Flask) -> None:
    """Register the operational commands."""
    app.cli.add_command(init_db_command)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(purge_idempotency_keys_command)
