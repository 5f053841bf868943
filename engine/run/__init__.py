"""Running one tier: its commands in process groups (pytest with mlci's plugin, `dvc repro`,
the gates child), their results, and the tier's verdict."""
