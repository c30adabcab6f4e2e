"""How good a compressed model is: quality against the uncompressed teacher (quality.py),
(the path that applies a recipe and scores it is search/evaluation.py)."""
