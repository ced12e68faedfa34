"""`python -m asrctl`: the `asrctl` command."""

from asrctl.cli import main

main()
