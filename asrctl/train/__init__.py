"""Fine-tuning (`asrctl finetune`): recipes and the settings every trainer takes, multi-process
launch, training audio augmentation, and what every trainer writes (the summary, averaged weights)."""
