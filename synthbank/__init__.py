"""A synthetic Dutch retail bank with known ground truth (`truth.parquet`).

`generate(customers, months, seed, out)` writes the five contract tables and, per customer,
product and month in which the customer does not hold the product, the true probability
`p_open` that they open it (absent while held; 0 for minors). See synthbank/README.md.
"""

from synthbank.generate import DEFAULT_END, GenerateResult, generate

__all__ = ["DEFAULT_END", "GenerateResult", "generate"]
