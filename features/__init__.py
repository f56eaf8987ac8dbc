"""Data contract, validation and point-in-time customer features (pure polars)."""
