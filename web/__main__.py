"""``python -m web`` is the ``geo311`` command."""

from web.cli import cli

cli()
