"""Data preparation, the `asrctl manifest` operations, one module each (asrctl/commands/manifest.py is
their command line): create, validate, stats, split, filter, segment, convert, merge. Shards are
written by the tarred format, asrctl.data.formats.shards."""
