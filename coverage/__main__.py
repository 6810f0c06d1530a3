"""Allow ``python -m coverage ...`` as an alias of the ``eldercov`` command."""

from coverage.cli import command

if __name__ == "__main__":
    raise SystemExit(command())
