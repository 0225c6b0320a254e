"""Reads of the whole database and of the command line, for secrets and personal data."""

from click.testing import CliRunner
from django.apps import apps

from bastion.cli import main


def rows_containing(value: str) -> list[str]:
    """Every stored row, of every model, whose text holds `value`: "model pk" each."""
    found = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields]
        for row in model.objects.values_list(*names):
            if value in repr(row):
                found.append(f"{model._meta.label} {row[0]}")
    return found


def cli(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result
