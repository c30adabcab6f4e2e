"""How good a compressed model is: quality against the uncompressed teacher (quality.py),
and the glue that applies a recipe and scores it (pipeline.py)."""
