"""Staff accounts and the API keys of Open311 clients."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from geo311.accounts import ROLES, create_user, set_password, set_role
from geo311_web import state


@click.group("users", cls=AppGroup)
def users() -> None:
    """Staff accounts (agent, dispatcher, planner, gis, records, emergency, admin)."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def users_create(name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account; the password is prompted for (or read from stdin)."""
    store = state().store
    store.schema.init()
    password = _read_password(password_stdin)
    user = create_user(store, name, password, role, actor="cli")
    click.echo(f"created {user.username} ({user.role})")


@users.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def users_password(name: str, password_stdin: bool) -> None:
    """Set a new password for a staff account."""
    set_password(state().store, name, _read_password(password_stdin), actor="cli")
    click.echo(f"password of {name} changed")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("list")
def users_list() -> None:
    """List staff accounts."""
    for u in state().store.accounts.users():
        last = u["last_login"].isoformat(timespec="minutes") if u["last_login"] else "never"
        click.echo(f"{u['username']:<24} {u['role']:<11} "
                   f"{'active' if u['active'] else 'disabled':<9} last login {last}")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a staff account (it can no longer log in)."""
    state().store.accounts.set_user_active(name, False, actor="cli")
    click.echo(f"{name} disabled")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def users_role(name: str, role: str) -> None:
    """Give a staff account another role (its open sessions end)."""
    set_role(state().store, name, role, actor="cli")
    click.echo(f"{name} is now {role}")


@users.command("enable")
@click.argument("name")
def users_enable(name: str) -> None:
    """Enable a disabled staff account again."""
    state().store.accounts.set_user_active(name, True, actor="cli")
    click.echo(f"{name} enabled")


@click.group("api-keys", cls=AppGroup)
def api_keys_group() -> None:
    """API keys for clients that POST requests (only a hash is stored)."""


@api_keys_group.command("create")
@click.argument("name")
def api_keys_create(name: str) -> None:
    """Make a key; it is printed once, alone on the last line."""
    s = state()
    s.store.schema.init()
    key = s.store.accounts.create_api_key(name, actor="cli")
    click.echo(f"API key {name!r} created; store it now, it cannot be shown again:")
    click.echo(key)


@api_keys_group.command("revoke")
@click.argument("name")
def api_keys_revoke(name: str) -> None:
    """Refuse a key from now on."""
    state().store.accounts.revoke_api_key(name, actor="cli")
    click.echo(f"API key {name!r} revoked")


@api_keys_group.command("list")
def api_keys_list() -> None:
    """List keys by name with their state (never the keys)."""
    for k in state().store.accounts.api_keys():
        when = f"revoked {k.revoked:%Y-%m-%d %H:%M}" if k.revoked else "active"
        click.echo(f"{k.name:<30} created {k.created:%Y-%m-%d %H:%M}  {when}")


COMMANDS = (users, api_keys_group)
