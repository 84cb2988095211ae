"""Evaluation harness: run the coder on notes with gold codes and report the metrics."""
