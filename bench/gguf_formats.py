"""Error and size of every GGUF weight type as devicefit encodes it, written to docs/gguf_formats.md.

Two weights: a standard Gaussian [256, 4096] (seeded), and demo:minilm's layer-0 FFN output
weight [384, 1536] (real, heavier-tailed; 1536 is a multiple of 256, so every type applies).
For each type: bits per weight from the byte layout, relative RMS error of the reconstruction
(RMS(w - w^) / RMS(w)) with devicefit's encoder and with llama.cpp's own quantizer (libggml, no
importance matrix), encode time per weight, and whether llama.cpp's C dequantization and the
`gguf` package's read devicefit's bytes exactly as devicefit does. devicefit's own 4-bit groups
are listed for scale.

Run: .venv/bin/python bench/gguf_formats.py [--out docs/gguf_formats.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from provenance import git_commit

TYPES = ["F16", "BF16", "Q8_0", "Q6_K", "Q5_1", "Q5_K", "Q5_0", "Q4_1", "Q4_K", "Q4_0", "Q3_K", "Q2_K"]


def _minilm_weight() -> np.ndarray:
    from search.models import load_model

    model = load_model("demo:minilm").model
    return model.encoder.layer[0].output.dense.weight.detach().float().numpy()


def _rel(back: np.ndarray, w: np.ndarray) -> float:
    w64 = w.astype(np.float64)
    return float(np.sqrt(np.mean((back - w64) ** 2) / np.mean(w64 ** 2)))


def _row(name: str, w: np.ndarray) -> tuple[float, float, float, float, bool]:
    import gguf

    from search.formats.codec import dequantize_rows, quantize_rows
    from search.formats.libggml import ggml_dequantize, ggml_quantize

    start = time.perf_counter()
    blocks = quantize_rows(w, name)
    encode_ns = (time.perf_counter() - start) / w.size * 1e9
    back = dequantize_rows(blocks, name)
    same = np.array_equal(back, gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType[name]).reshape(w.shape))
    same = same and np.array_equal(back, ggml_dequantize(blocks, name))
    llama_cpp = _rel(ggml_dequantize(ggml_quantize(w, name), name), w)
    return 8 * blocks.shape[1] / w.shape[1], _rel(back, w), llama_cpp, encode_ns, bool(same)


def _devicefit_groups(w: np.ndarray, group: int) -> tuple[float, float]:
    import torch

    from search.compress.quantize import dequantize_groups, quantize_groups
    from search.memory import layer_weight_bytes
    from search.recipe import LayerCompression

    q = quantize_groups(torch.from_numpy(w), 4, group, symmetric=False)
    back = dequantize_groups(q.codes, q.scales, q.zeros, 4, group).numpy()
    rel = float(np.sqrt(np.mean((back - w) ** 2) / np.mean(w ** 2)))
    bpw = 8 * layer_weight_bytes(w.shape[1], w.shape[0], False, LayerCompression(bits=4, group_size=group)) / w.size
    return bpw, rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/gguf_formats.md")
    args = parser.parse_args()
    weights = {"Gaussian [256, 4096]": np.random.default_rng(0).standard_normal((256, 4096)).astype(np.float32),
               "MiniLM layer-0 FFN out [384, 1536]": _minilm_weight()}
    lines = ["# GGUF weight types in devicefit: size and error", "",
             f"Measured by `bench/gguf_formats.py` at commit {git_commit()} on {platform.machine()} "
             f"({platform.python_version()}). Relative RMS error = RMS(w - w^) / RMS(w). Q8_0, Q5_x, Q4_x "
             "are llama.cpp's reference quantizer (bytes equal libggml's and the `gguf` package's); the "
             "K-quants use devicefit's own scale search (search/formats/kquant_fit.py), compared with "
             "libggml's quantizer without an importance matrix. Last column: llama.cpp's C dequantization "
             "and the `gguf` package's both equal devicefit's, bit for bit.", ""]
    header = "| type | bits/weight | " + " | ".join(f"rel. RMS {k}: devicefit / llama.cpp" for k in weights) + \
        " | devicefit encode ns/weight | llama.cpp and gguf read the same |"
    lines += [header, "|" + "---|" * (4 + len(weights))]
    for name in TYPES:
        results = [_row(name, w) for w in weights.values()]
        errors = " | ".join(f"{r[1]:.4f} / {r[2]:.4f}" for r in results)
        lines.append(f"| {name} | {results[0][0]:.4f} | {errors} | {results[0][3]:.0f} | "
                     f"{'yes' if all(r[4] for r in results) else 'NO'} |")
    for group in (32, 128):
        results = [_devicefit_groups(w, group) for w in weights.values()]
        errors = " | ".join(f"{r[1]:.4f} / -" for r in results)
        lines.append(f"| devicefit 4-bit g{group} (not GGUF) | {results[0][0]:.4f} | {errors} | | |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
