"""Step 1: clinical note → structured facts with evidence spans (see pipeline.Extractor)."""
