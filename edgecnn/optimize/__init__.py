"""Model optimization: functions that transform a finished float model (pruning, QAT)."""
