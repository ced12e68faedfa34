"""Models named by a hub id: fail within seconds when the Hugging Face Hub cannot be reached.

huggingface_hub retries an endpoint that does not answer for minutes (about 140 s, a screen of
`Retrying in 8s`) before it gives up. Before a model named by a hub id loads, asrctl tries one
connection to the endpoint (HF_ENDPOINT, else huggingface.co); when none is made within
CONNECT_SECONDS, this process goes offline (HF_HUB_OFFLINE=1): a model in the local cache loads at
once, one that is not fails at once, and `unreachable()` says why for the error line.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

CONNECT_SECONDS = 3.0
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = ("1", "true", "yes", "on")
_unreachable: str | None = None


def offline_unless_reachable(model: str) -> None:
    """Go offline for `model` (a hub id: not an existing path) when the Hub does not answer."""
    global _unreachable
    if Path(model).expanduser().exists() or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE:
        return
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=CONNECT_SECONDS).close()
        return
    except (OSError, ValueError) as exc:
        _unreachable = f"the Hugging Face Hub ({endpoint}) cannot be reached ({getattr(exc, 'strerror', None) or exc})"
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # already imported: it read the variable then
        constants.HF_HUB_OFFLINE = True


def unreachable() -> str | None:
    """Why this process went offline, or None."""
    return _unreachable


def offline_advice(model: str) -> str:
    """The end of an error line for a hub model that could not be had offline."""
    return (f"{unreachable()}, and {model!r} is not in the local cache: give a local model folder with -m, "
            "or fetch the model where there is network (HF_HUB_OFFLINE=1 then uses the cache)")
