"""`python -m lxrun` is the `lxrun` command."""

from lxrun.cli import main

main()
