import random

import optuna
import pytest

from search.recipe import DEFAULT_KEY
from search.space.graph import graph_from_config
from search.space.suggest import RecipeSpace, layer_groups
from search.spec import SearchSpace, parse_spec
from tests.conftest import tiny_config


@pytest.fixture(params=["llama", "bert", "gpt2", "qwen2"])
def graph(request):
    return graph_from_config(tiny_config(request.param))


@pytest.mark.parametrize("granularity", ["model", "role", "block", "layer"])
def test_groups_cover_every_untied_layer_once(graph, granularity):
    groups = layer_groups(graph, granularity)
    covered = [name for g in groups for name in g.layers]
    assert sorted(covered) == sorted(layer.name for layer in graph.layers if not layer.tied)
    space = RecipeSpace(graph, SearchSpace(granularity=granularity))
    rng = random.Random(0)
    for _ in range(20):
        params = {name: rng.choice(options) for name, options in space.choices.items()}
        recipe = space.recipe(params)
        resolved = recipe.resolve(graph)  # every key is an existing layer or a pattern that matches
        # each group's choice reaches exactly its layers
        for group in groups:
            if f"{group.label}.bits" in params:
                assert {resolved[n].bits for n in group.layers if n in resolved} <= {params[f"{group.label}.bits"]}


def test_role_patterns_do_not_capture_other_roles():
    graph = graph_from_config(tiny_config("bert"))  # 'output.dense' (fc2) is a suffix of 'attention.output.dense' (o)
    space = RecipeSpace(graph, SearchSpace(granularity="role", axes=("bits",)))
    params = space.params(bits=8, per_group={"o": {"bits": 4}, "fc2": {"bits": 2}})
    resolved = space.recipe(params).resolve(graph)
    assert resolved["encoder.layer.0.attention.output.dense"].bits == 4
    assert resolved["encoder.layer.0.output.dense"].bits == 2
    assert resolved["encoder.layer.0.attention.self.query"].bits == 8


def test_uniform_params_give_a_one_rule_recipe(graph):
    space = RecipeSpace(graph, SearchSpace())
    recipe = space.recipe(space.params(bits=8))
    assert list(recipe.layers) == [DEFAULT_KEY] and recipe.layers[DEFAULT_KEY].bits == 8
    assert recipe.keep_blocks is None and recipe.width.mlp == 1.0
    assert space.recipe(space.params()).layers[DEFAULT_KEY].is_identity


def test_two_four_only_at_half():
    space = RecipeSpace(graph_from_config(tiny_config("llama")), SearchSpace(granularity="model"))
    options = space.choices["all.sparsity"]
    assert "0.5@2:4" in options and "0.25@2:4" not in options and "0" in options


def test_suggest_through_optuna():
    graph = graph_from_config(tiny_config("llama"))
    space = RecipeSpace(graph, SearchSpace(granularity="block"))
    study = optuna.create_study(directions=["minimize"])
    trial = study.ask()
    recipe = space.suggest(trial)
    assert set(trial.params) == set(space.choices)
    assert recipe == space.recipe(trial.params)


def test_a_spec_saved_before_score_and_method_choices_still_parses():
    from search.spec import parse_spec

    old = ('{"model": "demo:minilm", "device": "host", "space": {"axes": ["bits", "sparsity"], "granularity": "role", '
           '"bits": [16, 8, 4], "group_sizes": [32, 128], "sparsity": [0.0, 0.5], '
           '"sparsity_patterns": ["unstructured"], "sparsity_score": "wanda", "ranks": [1.0], '
           '"width": [1.0], "depth": [1.0]}}')
    space = parse_spec(old).space
    assert space.sparsity_scores == ("wanda",)  # the one score it searched
    assert space.methods == ("rtn", "gptq")  # today's default
    recipes = RecipeSpace(graph_from_config(tiny_config("bert")), space)
    assert not any(name.endswith(".score") for name in recipes.choices)
    assert recipes.recipe(recipes.params(bits=4, sparsity="0.5")).layers[DEFAULT_KEY].sparsity_score == "wanda"
    assert parse_spec('{"space": {"bits": [8, 4]}}').space.sparsity_scores == ("magnitude", "wanda")
    with pytest.raises(Exception, match="sparsity_score"):
        parse_spec('{"space": {"sparsity_score": "wanda", "sparsity_scores": ["magnitude"]}}')


@pytest.mark.parametrize("space, field", [('{"group_sizes": []}', "group_sizes"), ('{"group_sizes": [0]}', "group_sizes"),
                                          ('{"sparsity_patterns": []}', "sparsity_patterns"),
                                          ('{"methods": []}', "methods"), ('{"depth": [true]}', "depth"),
                                          ('{"bits": [true]}', "bits")])
def test_an_empty_or_impossible_choice_list_is_refused_naming_the_field(space, field):
    """Found by the service fuzz test: an empty group_sizes list reached the recipe space (IndexError, 500)."""
    with pytest.raises(Exception, match=field):
        parse_spec(f'{{"space": {space}}}')
