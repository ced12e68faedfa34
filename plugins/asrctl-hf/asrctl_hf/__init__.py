"""asrctl-hf: Hugging Face transformers model families for asrctl.

Hook implementations live here; torch and transformers are imported only when a backend or
trainer is used, so `asrctl --help` stays fast.
"""
