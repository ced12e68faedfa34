"""The probe backend, which reports the audio it gets (fault-injection and interop tests), and helpers."""

import json

# A backend that reports what it was given: sample count and peak level of each utterance (so a
# resampled, down-mixed or rescaled input shows in the output). Faults on demand, by environment:
# PROBE_OOM_ABOVE=N raises CUDA's out-of-memory error for batches of more than N utterances;
# PROBE_FAIL_SAMPLES=N raises for any batch holding an utterance of N samples;
# PROBE_SLEEP=S sleeps S seconds per batch (time to interrupt a job);
# PROBE_SWALLOW_SIGINT=N has Ctrl-C pressed twice during batch N while a finalizer runs, which drops
#   the KeyboardInterrupt of the second;
# PROBE_MEAN=1 adds the mean magnitude (" mean 0.123456"), which tells spans of a signal apart;
# PROBE_TIMES=1 gives each utterance one timed segment (0 to its length) and its words spread evenly
#   over it, and declares the timestamps option;
# PROBE_LOAD_FAIL=1 fails to load the model;
# PROBE_WINDOW=S declares a window of S seconds (what --segment auto cuts longer rows to).
PROBE = """
import os, signal, time
import numpy as np
from asrctl import BackendSpec, Transcript, hookimpl

class Finalizer:
    def __del__(self):  # as the garbage collector runs one: Python prints "Exception ignored" and goes on
        for _ in range(2):  # the first asks to finish the batch, the second to stop now
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs, and raises, at a jump of this loop
                pass

class Probe:
    batches = 0

    def transcribe(self, batch):
        time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
        self.batches += 1
        if self.batches == int(os.environ.get("PROBE_SWALLOW_SIGINT", "-1")):
            Finalizer()
        if len(batch) > int(os.environ.get("PROBE_OOM_ABOVE", "1000000")):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if any(len(a) == int(os.environ.get("PROBE_FAIL_SAMPLES", "-1")) for a in batch):
            raise ValueError("probe failure")
        out = []
        for a in batch:
            assert a.dtype == np.float32 and a.ndim == 1 and np.isfinite(a).all()
            text = f"{len(a)} samples peak {float(np.abs(a).max()):.2f}"
            if os.environ.get("PROBE_MEAN"):
                text += f" mean {float(np.abs(a).mean()):.6f}"
            transcript = Transcript(text=text)
            if os.environ.get("PROBE_TIMES"):
                end = round(len(a) / 16000, 2)
                transcript.segments = [{"start": 0.0, "end": end, "text": text}]
                words = text.split()
                ends = [round(end * i / len(words), 3) for i in range(len(words) + 1)]
                transcript.words = [{"start": ends[i], "end": ends[i + 1], "word": w} for i, w in enumerate(words)]
            out.append(transcript)
        return out

def load(model, *, device, dtype, **options):
    if os.environ.get("PROBE_LOAD_FAIL"):
        raise RuntimeError("probe model failed to load")
    return Probe()

@hookimpl
def register_backends(register):
    window = os.environ.get("PROBE_WINDOW")
    register(BackendSpec(name="probe", load=load, description="reports the audio it gets",
                         window=float(window) if window else None,
                         options=frozenset({"timestamps"}) if os.environ.get("PROBE_TIMES") else frozenset()))
"""


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]
