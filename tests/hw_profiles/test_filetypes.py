"""Runtime file types: per-tensor mixtures (llama.cpp's llama-quant.cpp rules, MLC's group quantization),
their true bits per weight from the block layouts, and what they do to predicted latency and memory."""

import json

import pytest

from search.cli.main import main
from search.errors import RecipeError
from search.formats.filetypes import (
    FILETYPES,
    bits_per_weight,
    canonical_filetype,
    more_bits,
    recipe_for_filetype,
    tensor_bytes,
)
from search.hw_profiles import list_profiles, load_profile
from search.hw_profiles.latency import predict_latency
from search.space.graph import graph_from_config

# every dimension a multiple of 256, so no tensor falls back to another type; n_heads / n_kv_heads = 4
REFERENCE = graph_from_config({"model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
                               "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 2,
                               "vocab_size": 1024, "tie_word_embeddings": False})
TIED = graph_from_config({"model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
                          "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 8,
                          "vocab_size": 1024, "tie_word_embeddings": True})
LLAMA2_7B = graph_from_config({"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
                               "intermediate_size": 11008, "num_attention_heads": 32, "num_key_value_heads": 32,
                               "vocab_size": 32000, "tie_word_embeddings": False})

# bits per weight from ggml-common.h's block structs: (bytes of scales/mins + bytes of codes) * 8 / weights
BLOCK_LAYOUT_BPW = {
    "Q8_0": (2 + 32) * 8 / 32,                            # fp16 d, 32 int8
    "Q5_1": (2 + 2 + 4 + 16) * 8 / 32,                    # d, m, 32 high bits, 32 nibbles
    "Q5_0": (2 + 4 + 16) * 8 / 32,
    "Q4_1": (2 + 2 + 16) * 8 / 32,
    "Q4_0": (2 + 16) * 8 / 32,                            # = 4.5
    "Q6_K": (128 + 64 + 16 + 2) * 8 / 256,                # ql, qh, int8 scales[16], fp16 d
    "Q5_K": (2 + 2 + 12 + 32 + 128) * 8 / 256,            # d, dmin, 6-bit scales, qh, qs
    "Q4_K": (2 + 2 + 12 + 128) * 8 / 256,
    "Q3_K": (32 + 64 + 12 + 2) * 8 / 256,                 # hmask, qs, scales, d
    "Q2_K": (16 + 64 + 2 + 2) * 8 / 256,                  # scales, qs, d, dmin
    "F16": 16.0, "BF16": 16.0,
}


def _types(graph, ftype):
    recipe = recipe_for_filetype(graph, ftype)
    settings = recipe.resolve(graph)
    types = {name: s.format for name, s in settings.items()}
    types["embedding"] = recipe.embedding.format
    return types


def _block_linear(key: str) -> bool:
    return key.startswith("model.layers.")


@pytest.mark.parametrize("ftype,gtype", [("Q8_0", "Q8_0"), ("Q5_1", "Q5_1"), ("Q5_0", "Q5_0"), ("Q4_1", "Q4_1"),
                                         ("Q4_0", "Q4_0"), ("Q6_K", "Q6_K"), ("Q5_K_S", "Q5_K"), ("Q3_K_S", "Q3_K"),
                                         ("F16", "F16"), ("BF16", "BF16")])
def test_single_type_files_store_their_block_layout(ftype, gtype):
    """Files with one type for every block linear layer: their bits per weight is that type's block layout."""
    assert bits_per_weight(REFERENCE, ftype, only=_block_linear) == pytest.approx(BLOCK_LAYOUT_BPW[gtype])


def test_q4_0_is_4_5_bits_on_linear_layers_and_its_output_is_q6_k():
    assert bits_per_weight(REFERENCE, "Q4_0", only=_block_linear) == 4.5
    types = _types(REFERENCE, "Q4_0")
    assert types["lm_head"] == "Q6_K" and types["embedding"] == "Q4_0"
    assert bits_per_weight(REFERENCE, "Q4_0", only=lambda k: k == "lm_head") == BLOCK_LAYOUT_BPW["Q6_K"]


def test_q4_k_m_mixture_follows_use_more_bits():
    types = _types(REFERENCE, "Q4_K_M")
    assert types["lm_head"] == "Q6_K" and types["embedding"] == "Q4_K"  # untied: token_embd keeps the default
    # 8 blocks: the first and last eighth (blocks 0 and 7) and every third between (3, 6)
    upgraded = [i for i in range(8) if types[f"model.layers.{i}.self_attn.v_proj"] == "Q6_K"]
    assert upgraded == [0, 3, 6, 7]
    assert [i for i in range(8) if types[f"model.layers.{i}.mlp.down_proj"] == "Q6_K"] == [0, 3, 6, 7]
    for i in range(8):
        for part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj"):
            assert types[f"model.layers.{i}.{part}"] == "Q4_K"
        if i not in upgraded:
            assert types[f"model.layers.{i}.self_attn.v_proj"] == "Q4_K"


def test_use_more_bits_on_28_layers():
    assert [i for i in range(28) if more_bits(i, 28)] == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]


def test_other_k_mixtures():
    s = _types(REFERENCE, "Q4_K_S")
    assert [s[f"model.layers.{i}.self_attn.v_proj"] for i in range(8)] == ["Q5_K"] * 4 + ["Q4_K"] * 4
    assert [s[f"model.layers.{i}.mlp.down_proj"] for i in range(8)] == ["Q5_K"] + ["Q4_K"] * 7
    m = _types(REFERENCE, "Q3_K_M")
    assert [m[f"model.layers.{i}.self_attn.v_proj"] for i in range(3)] == ["Q5_K", "Q5_K", "Q4_K"]
    assert m["model.layers.0.mlp.down_proj"] == "Q4_K"  # 8 // 16 = 0 layers get Q5_K
    assert m["model.layers.0.self_attn.o_proj"] == "Q4_K" and m["model.layers.0.self_attn.q_proj"] == "Q3_K"
    q2 = _types(REFERENCE, "Q2_K")  # 8 heads over 2 KV heads: n_gqa 4
    assert q2["model.layers.0.self_attn.v_proj"] == "Q4_K" and q2["model.layers.0.mlp.down_proj"] == "Q3_K"
    assert q2["model.layers.0.self_attn.o_proj"] == "Q3_K" and q2["model.layers.0.mlp.up_proj"] == "Q2_K"
    assert _types(TIED, "Q2_K")["model.layers.0.self_attn.v_proj"] == "Q3_K"  # no GQA
    assert _types(REFERENCE, "Q8_0")["lm_head"] == "Q8_0"
    assert set(_types(REFERENCE, "F16").values()) == {"F16"}


def test_tied_models_store_the_shared_matrix_as_the_output_rule_says():
    for ftype, head in (("Q4_K_M", "Q6_K"), ("Q4_0", "Q6_K"), ("Q8_0", "Q8_0"), ("F16", "F16")):
        recipe = recipe_for_filetype(TIED, ftype)
        assert recipe.embedding.format == head
        assert "lm_head" not in recipe.layers  # the tied head follows the embedding entry


def test_rows_the_block_does_not_divide_fall_back():
    """hidden 1152 = 4.5 x 256: K-quant rows fall back (Q4_K -> Q5_0, Q6_K -> Q8_0); the output becomes Q8_0."""
    odd = graph_from_config({"model_type": "llama", "hidden_size": 1152, "intermediate_size": 6912,
                             "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 1,
                             "head_dim": 256, "vocab_size": 512, "tie_word_embeddings": True})
    t = _types(odd, "Q4_K_M")
    assert t["model.layers.1.self_attn.q_proj"] == "Q5_0"       # rows of 1152
    assert t["model.layers.3.self_attn.v_proj"] == "Q8_0"       # Q6_K on a more-bits layer (3 of 4), 1152 wide
    assert t["model.layers.0.self_attn.v_proj"] == "Q5_0"       # Q4_K elsewhere
    assert t["model.layers.1.mlp.down_proj"] == "Q4_K"          # rows of 6912 = 27 x 256
    assert t["model.layers.1.self_attn.o_proj"] == "Q4_K"       # rows of 4 x 256
    assert t["embedding"] == "Q8_0"
    odd32 = graph_from_config({"model_type": "llama", "hidden_size": 80, "intermediate_size": 160,
                               "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 64})
    assert _types(odd32, "Q4_0")["model.layers.0.self_attn.q_proj"] == "F16"  # not even 32 divides 80


@pytest.mark.parametrize("ftype,gigabytes", [("Q4_0", 3.83), ("Q4_K_S", 3.86), ("Q4_K_M", 4.08), ("Q3_K_M", 3.30),
                                             ("Q5_K_M", 4.78), ("Q6_K", 5.53), ("Q8_0", 7.16)])
def test_llama_2_7b_file_sizes_match_published_gguf_files(ftype, gigabytes):
    """Weights of Llama-2-7B per file type against the published GGUF file sizes (TheBloke/Llama-2-7B-GGUF)."""
    total = sum(b for _, b in tensor_bytes(LLAMA2_7B, recipe_for_filetype(LLAMA2_7B, ftype)).values())
    assert total / 1e9 == pytest.approx(gigabytes, rel=0.01)


@pytest.mark.parametrize("ftype,bpw", [("q4f16_1", 4 + 16 / 32), ("q4f32_1", 4 + 32 / 32),
                                       ("q3f16_1", 32 / 10 + 16 / 40), ("q0f16", 16.0)])
def test_mlc_modes_have_their_true_bits_everywhere(ftype, bpw):
    """MLC quantizes embeddings and the final projection too: every tensor at the mode's bits per weight."""
    mlc = graph_from_config({"model_type": "llama", "hidden_size": 640, "intermediate_size": 1280,
                             "num_hidden_layers": 2, "num_attention_heads": 8, "vocab_size": 320,
                             "tie_word_embeddings": False})
    sizes = tensor_bytes(mlc, recipe_for_filetype(mlc, ftype))
    for name, (weights, nbytes) in sizes.items():
        assert 8 * nbytes / weights == pytest.approx(bpw), name


def test_names_are_case_insensitive_and_q4f16_is_q4f16_1():
    assert canonical_filetype("q4_k_m") == "Q4_K_M" and canonical_filetype("q4f16") == "q4f16_1"
    with pytest.raises(RecipeError, match="Q4_K_M.*q4f16_1"):
        canonical_filetype("Q4_K_X")
    assert len(FILETYPES) == 19


# ---- what the file types do to predictions ---------------------------------------------------------------

LLAMA32_1B = graph_from_config({"model_type": "llama", "num_hidden_layers": 16, "hidden_size": 2048,
                                "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 8,
                                "vocab_size": 128256, "tie_word_embeddings": True})
PROFILES = [load_profile(name) for name in list_profiles()]


def test_the_tied_head_is_read_in_its_own_type():
    """Llama 3.2 1B Q4_0: the tied head is Q6_K, a fifth of the bytes each token reads."""
    report = predict_latency(LLAMA32_1B, recipe_for_filetype(LLAMA32_1B, "Q4_0"), "decode:128", load_profile("rpi5"))
    head = next(op for op in report.layers if op.name == "lm_head")
    head_bytes = 128256 * 2048 * BLOCK_LAYOUT_BPW["Q6_K"] / 8
    assert head.bytes == pytest.approx(head_bytes, rel=0.01)
    linear = sum(op.bytes for op in report.layers if op.kind == "linear")
    assert 0.2 < head.bytes / linear < 0.3
    # memory counts the shared matrix once, at Q6_K
    assert report.weight_bytes == pytest.approx(sum(b for _, b in tensor_bytes(
        LLAMA32_1B, recipe_for_filetype(LLAMA32_1B, "Q4_0")).values()), rel=0.002)


# a measured llama.cpp profile (host-llamacpp) prices each GGUF type by its timed kernels, and those are not
# monotone in bits: on this CPU one thread runs Q3_K and Q5_K slower per weight than Q4_K and Q6_K
ROOFLINE_PROFILES = [p for p in PROFILES if p.measured is None or p.measured.gguf is None]


@pytest.mark.parametrize("profile", ROOFLINE_PROFILES, ids=lambda p: p.name)
def test_larger_file_types_never_faster(profile):
    """Along a chain where no tensor gets fewer bytes, decode and prefill never get faster."""
    chain = ["Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K", "Q8_0", "F16"]
    for workload in ("decode:128", "prefill:64"):
        times = [predict_latency(LLAMA2_7B, recipe_for_filetype(LLAMA2_7B, f), workload, profile).total_ms
                 for f in chain]
        assert times == sorted(times), (workload, dict(zip(chain, times, strict=True)))
    if {4, 8} <= set(profile.weight_formats):  # the runtime stores both (not the host's bf16 PyTorch)
        q4 = predict_latency(LLAMA2_7B, recipe_for_filetype(LLAMA2_7B, "Q4_0"), "decode:128", profile).total_ms
        q8 = predict_latency(LLAMA2_7B, recipe_for_filetype(LLAMA2_7B, "Q8_0"), "decode:128", profile).total_ms
        assert q8 > q4


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_fewer_blocks_of_a_file_type_never_slower(profile):
    recipe = recipe_for_filetype(REFERENCE, "Q4_K_M")
    times = [predict_latency(REFERENCE, recipe.model_copy(update={"keep_blocks": keep}), "decode:64",
                             profile).total_ms for keep in ((0,), (0, 3), (0, 3, 6), None)]
    assert times == sorted(times)


def test_predict_format_cli(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 512,
                                  "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
                                  "vocab_size": 4096, "tie_word_embeddings": True}))
    data = {}
    for ftype in ("Q4_K_M", "Q8_0", "q4f16"):
        assert main(["predict", "--device", "rpi5", "--model", str(config), "--format", ftype,
                     "--workload", "decode:128", "--json"]) == 0
        data[ftype] = json.loads(capsys.readouterr().out)
    assert data["Q8_0"]["memory_bytes"] > data["Q4_K_M"]["memory_bytes"] > data["q4f16"]["memory_bytes"]
    assert main(["predict", "--device", "rpi5", "--model", str(config), "--format", "q4_k_m"]) == 0
    assert "Q4_K_M (llama.cpp file type" in capsys.readouterr().out


def test_predict_format_errors_exit_2(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 256,
                                  "intermediate_size": 512, "num_attention_heads": 4, "vocab_size": 512}))
    assert main(["predict", "--device", "rpi5", "--model", str(config), "--format", "Q4_K_X"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Q4_K_M" in err[0] and "q4f16_1" in err[0] and "Traceback" not in err[0]
    assert main(["predict", "--device", "rpi5", "--model", str(config), "--format", "Q4_0", "--bits", "4"]) == 2
    assert "--format" in capsys.readouterr().err


@pytest.mark.parametrize("tied", [False, True])
def test_file_type_recipes_build_models_of_the_predicted_size(tied):
    """apply() builds every file type's recipe; its bytes are what memory and latency count."""
    import torch
    import transformers

    from search.compress import apply
    from search.memory import memory_report, model_bytes
    from search.space.graph import graph_from_model

    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                      tie_word_embeddings=tied)
    model = transformers.LlamaForCausalLM(config).eval()
    graph = graph_from_model(model)
    for ftype in ("Q4_K_M", "Q4_0", "q4f16_1"):
        recipe = recipe_for_filetype(graph, ftype)
        built = apply(model, recipe)
        assert model_bytes(built) == memory_report(graph, recipe).total_bytes
        with torch.no_grad():
            assert torch.isfinite(built(torch.randint(0, 512, (1, 8))).logits).all()
        predicted = predict_latency(graph, recipe, "decode:8", load_profile("rpi5"))
        assert predicted.weight_bytes == memory_report(graph, recipe).total_bytes
