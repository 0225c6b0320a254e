"""This app's `bastion` subcommands."""


def register(main) -> None:
    """Adds this app's commands to the `bastion` command group."""
