"""No import circles in the packages, counting imports inside functions and type-only ones."""

from tests.architecture.import_graph import cycles, import_graph


def test_the_walk_sees_function_level_imports():
    graph = import_graph()
    # search.cli.cmd_evaluate imports search.models inside run(): a function-level edge
    assert "search.models" in graph["search.cli.cmd_evaluate"]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
