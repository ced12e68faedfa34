"""The `asrctl manifest` operations, one module each; asrctl/commands/manifest.py is their command line.

What they share with the rest of asrctl lives beside them: asrctl.reading (rows and errors in file
order, any registered format), asrctl.parallel (ordered thread map), asrctl.probing (durations from
headers), asrctl.progress (error lines, bars, tables); the tarred writer of `manifest shard` is the
tarred format's, asrctl.formats.shards.
"""
