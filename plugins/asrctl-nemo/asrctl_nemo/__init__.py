"""asrctl-nemo: NVIDIA NeMo ASR models for asrctl.

Hook implementations live here; NeMo is imported only when its backend or trainer is used
(importing it takes seconds), so every other command starts without it.
"""
