"""``python -m geo311_web`` is the ``geo311`` command."""

from geo311_web.cli import cli

cli()
