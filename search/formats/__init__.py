"""Runtime weight formats: GGML/GGUF tensor types (block layouts, bits per weight) and
the runtimes' file-type mixtures. Pure data and numerics; importing this package does not import torch."""
