"""Training: the LightningModule, the callbacks every run gets, the settings, progress,
throughput, schedules and loggers of a fit."""
