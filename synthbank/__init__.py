"""A synthetic Dutch retail bank with known ground truth (`truth.parquet`).

`generate(customers, months, seed, out)` writes the five contract tables and the true monthly
probability that each customer opens each product; see `synthbank.generate`.
"""

from synthbank.generate import DEFAULT_END, GenerateResult, generate

__all__ = ["DEFAULT_END", "GenerateResult", "generate"]
