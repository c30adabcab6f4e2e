"""Runtimes that run an exported model outside PyTorch: GGUF files for llama.cpp.

- gguf_names: Hugging Face module names -> GGUF tensor names and architecture metadata, per family
- gguf_tokenizer: the tokenizer as GGUF metadata (byte-level BPE, WordPiece)
- gguf_writer: write_gguf(model, tokenizer, ...) -> one .gguf file, written atomically
- llamacpp: load a GGUF with llama-cpp-python; logits, embeddings, generation, timing
- llamacpp_quality: score a GGUF against the model it was made from (same rows, same metrics)

The ``gguf`` and ``llama_cpp`` packages are imported inside functions (the
``llamacpp`` extra); ``import search`` stays light.
"""
