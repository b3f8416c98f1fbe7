"""Importers: published checkpoints -> genlab run directories (`genlab import KIND DIR --out RUN`)."""
from .gpt2 import import_gpt2, read_gpt2_checkpoint

__all__ = ["import_gpt2", "read_gpt2_checkpoint"]
