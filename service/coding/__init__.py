"""Step 2: extracted facts → ICD-10-CM codes (retrieval, choice, validation, flags)."""
