"""`asrctl manifest`: build, check, inspect and convert audio manifests."""

from __future__ import annotations

import click


@click.group("manifest")
def manifest_group() -> None:
    """Build, check, inspect, split, filter, convert and shard audio manifests.

    The native format is NeMo's JSONL: one JSON object per line with audio_filepath, duration and
    text, plus any other fields, which every command keeps. Relative audio paths resolve against
    the manifest's folder.
    """
