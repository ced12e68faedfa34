"""Templates: what the trainer makes and the backend reads. `-m empty` starts from none."""

import math
import time
from pathlib import Path

import numpy as np

from asrctl import SAMPLE_RATE, AsrctlError, AudioError, Transcript
from asrctl.api import (
    AUDIO_KEY,
    AtomicWriter,
    edit_counts,
    get_normalizer,
    load_audio,
    peak_memory,
    print_summary,
    read_training_rows,
    totals,
    training_progress,
    training_rows,
    write_training_summary,
)

MODEL_FILE = "templates.npz"
# Settings every trainer takes that templates have no use for: refused rather than ignored.
UNUSED = ("learning_rate", "epochs", "eval_steps", "early_stopping_patience", "tensorboard", "num_workers")


def shape(audio, bands):
    """The utterance's log spectrum in `bands` bands, scaled to length 1 (loudness does not count)."""
    spectrum = np.log1p(np.abs(np.fft.rfft(audio)))
    parts = np.array_split(spectrum, bands)
    values = np.array([part.mean() if len(part) else 0.0 for part in parts])
    return values / (np.linalg.norm(values) or 1.0)


class Templates:
    def __init__(self, model, bands=None):
        if model == "empty":
            self.bands, self.shapes, self.texts = bands or 32, np.zeros((0, bands or 32)), []
            return
        path = Path(model) / MODEL_FILE
        if not path.is_file():
            raise AsrctlError(f"{model}: no {MODEL_FILE} here (give a folder `asrctl finetune -b templates` "
                              "wrote, or -m empty)")
        with np.load(path) as saved:
            self.bands, self.shapes, self.texts = int(saved["bands"]), saved["shapes"], list(saved["texts"])
        if bands not in (None, self.bands):
            raise AsrctlError(f"training.bands: {model} has templates of {self.bands} bands")

    def add(self, audio, text):
        self.shapes = np.vstack([self.shapes, shape(audio, self.bands)])
        self.texts.append(text)

    def nearest(self, audio):
        if not self.texts:
            return ""
        return self.texts[int(np.argmax(self.shapes @ shape(audio, self.bands)))]

    def save(self, folder):
        with AtomicWriter(Path(folder) / MODEL_FILE, "wb") as f:
            np.savez(f, bands=self.bands, shapes=self.shapes, texts=np.array(self.texts))


class Recogniser:
    def __init__(self, model):
        self.templates = Templates(model)

    def transcribe(self, batch):
        return [Transcript(text=self.templates.nearest(audio)) for audio in batch]


def check(recipe, *, resume):
    for key in UNUSED:
        if recipe["training"].get(key) is not None:
            raise AsrctlError(f"training.{key}: the templates trainer has no use for it")
    if recipe["method"] != "sft" or resume:
        raise AsrctlError("the templates trainer only adds templates: no LoRA, nothing to resume")


def split(recipe, name, out):
    """The (audio, text) pairs of TRAIN or VAL that can be learnt from, the errors, and the data summary."""
    data = recipe["data"]
    records, errors = read_training_rows(data[name], data.get("format"), out / "audio" / name)
    limits = {"min_duration": data.get("min_duration"), "max_duration": data.get("max_duration")}
    rows, dropped = training_rows(records, **(limits if name == "train" else {}))  # the rules of every trainer
    dropped["unreadable record"] = len(errors)
    kept = []
    for row in rows:
        try:
            audio = load_audio(row[AUDIO_KEY], offset=float(row.get("offset") or 0), duration=row["duration"],
                               channel=row.get("channel"))
        except AudioError as error:
            errors.append(str(error))
            dropped["unreadable audio"] += 1
            continue
        kept.append((audio, row["text"]))
    dropped = {reason: count for reason, count in dropped.items() if count}
    return kept, errors, {"file": data[name], "rows": len(kept),
                          "hours": sum(len(audio) for audio, _ in kept) / SAMPLE_RATE / 3600,
                          "dropped": sum(dropped.values()), "dropped_by_reason": dropped}


def train(recipe, *, resume, quiet):
    started = time.perf_counter()
    out = Path(recipe["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    settings = recipe["training"]
    templates = Templates(recipe["model"], settings.get("bands"))
    train_rows, errors, train_report = split(recipe, "train", out)
    if not train_rows:
        raise AsrctlError(f"{recipe['data']['train']}: no rows with audio and text to train on")
    val_rows, val_report = [], None
    if recipe["data"].get("val"):
        val_rows, val_errors, val_report = split(recipe, "val", out)
        errors += val_errors
    print_summary("data", [("train", f"{len(train_rows)} rows")], errors, quiet=quiet)
    batch = int(settings.get("batch_size") or 8)
    steps = min(math.ceil(len(train_rows) / batch), settings.get("max_steps") or math.inf)
    progress, task = training_progress(steps, 0) if not quiet else (None, None)
    for step in range(steps):
        for audio, text in train_rows[step * batch:(step + 1) * batch]:
            templates.add(audio, text)
        if progress:
            progress.advance(task)
    if progress:
        progress.stop()
    templates.save(out)
    wer = None
    if val_rows:
        normalise = get_normalizer("basic")
        hyps = [normalise(templates.nearest(audio)) for audio, _ in val_rows]
        wer = 100 * totals(edit_counts([normalise(text) for _, text in val_rows], hyps)).rate
    summary = {
        "backend": "templates", "base_model": recipe["model"], "method": "sft", "output_dir": str(out),
        "model": str(out), "merged_model": None, "data": {"train": train_report, "val": val_report},
        "vocabulary": "the training texts", "steps": steps,
        "epochs": round(min(steps * batch, len(train_rows)) / max(len(train_rows), 1), 3),
        "resumed_from_step": None, "best_val_wer": wer, "best_checkpoint": None,
        "trainable_parameters": templates.shapes.size, "parameters": templates.shapes.size,
        "trainable_share": 1.0, "processes": 1, **peak_memory(),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    write_training_summary(out, summary)
    return summary
