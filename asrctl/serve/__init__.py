"""A model loaded once and kept: the Python API (`asrctl.serve.load`), whose callers' audio, from any
number of threads, is batched together, and the HTTP server over it."""

from asrctl.serve.model import Model, load

__all__ = ["Model", "load"]
