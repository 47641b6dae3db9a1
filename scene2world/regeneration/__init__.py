"""Scheduled regeneration: ask a source whether it changed, compare with the last generation, report."""
