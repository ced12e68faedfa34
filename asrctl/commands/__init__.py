"""One module per `asrctl` subcommand. Heavy imports stay inside the command functions."""
