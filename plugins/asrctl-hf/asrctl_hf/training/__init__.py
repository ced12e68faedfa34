"""The hf trainer: `asrctl finetune` for hf-ctc and hf-whisper on transformers' Trainer, LoRA through peft.

run.train is the entry point; task.py and its ctc_task/whisper_task say what each model family
needs; data, collator, trainers, metrics, progress, lora, checkpoints and settings hold the rest.
"""
