"""The `asrctl manifest` operations, one module each; asrctl/commands/manifest.py is their command line.

Shared pieces: `paths` (audio paths seen from another folder), `reading` (rows and errors in file
order, any registered format), `parallel` (ordered thread map), `console` (errors, progress, tables).
"""
