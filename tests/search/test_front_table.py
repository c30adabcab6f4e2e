from search.cli.front_table import front_table, recipe_text
from search.space.graph import graph_from_config
from search.space.suggest import RecipeSpace
from search.spec import SearchSpace
from tests.conftest import tiny_config


def test_recipe_text_names_roles_and_structure():
    space = RecipeSpace(graph_from_config(tiny_config("bert")), SearchSpace(granularity="role"))
    recipe = space.recipe(space.params(bits=8, mlp=0.5, depth=0.67,
                                       per_group={"o": {"bits": 4}, "fc2": {"bits": 2, "sparsity": "0.5@2:4"}}))
    text = recipe_text(recipe.model_dump(mode="json"))
    assert text.startswith("8b/g128; ") and "o=4b/g128" in text and "fc2=2b/g128 50% 2:4" in text
    assert "mlp×0.5" in text and "2 blocks" in text


def test_front_table_rows():
    recipe = {"layers": {"_default": {"bits": 4}}}
    table = front_table([{"quality": {"kl": 0.1, "perplexity": 9.0}, "latency_ms": 12.5, "memory_bytes": 2_000_000,
                          "recipe": recipe}], "kl")
    header, row = table.splitlines()
    assert header.split()[:3] == ["#", "kl", "perplexity"]
    assert "12.5ms" in row and "2.00MB" in row and row.rstrip().endswith("4b/g128")


def test_recipe_text_names_the_group_size_and_gptq():
    gptq = {"layers": {"_default": {"bits": 4, "group_size": 32, "method": "gptq", "act_order": True},
                       "lm_head": {"format": "Q6_K"}}}
    assert recipe_text(gptq) == "4b/g32 gptq-ao; lm_head=Q6_K"
    assert recipe_text({"layers": {"_default": {"format": "Q4_0", "method": "gptq"}}}) == "Q4_0 gptq"
