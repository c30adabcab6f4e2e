"""Layers read top-down (docs/architecture.md): a module imports only its own layer or lower ones,
counting imports inside functions too."""

from tests.architecture.import_graph import import_graph

# most specific prefix wins; higher numbers sit higher
LAYERS = {
    "search.cli": 5,
    "service": 4, "workers": 4,
    "search.engine": 3, "search.executors": 3, "search.staging": 3, "search.study": 3, "search.seeds": 3,
    "search.results": 3, "search.space.sensitivity": 3, "search.recovery.in_search": 3,
    "search.evaluation": 2, "search.export_candidate": 2, "search.generate": 2,
    "search.runtimes.llamacpp_quality": 2,  # scores a GGUF on the evaluation path's rows
    "search": 1,  # compress, evaluators, hw_profiles, space, formats, export, runtimes, recovery, models, data ...
    "search.recipe": 0, "search.spec": 0, "search.units": 0, "search.workload": 0, "search.errors": 0,
    "search.data_policy": 0, "search.executor": 0, "search.formats.ggml_types": 0,
    "search.recovery.budget": 0,  # a unit parser ('200steps', '30s') the spec validates with
}
NAMES = {0: "schemas", 1: "library", 2: "evaluation path", 3: "engine", 4: "service/workers", 5: "CLI"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def upward_imports() -> list[str]:
    found = []
    for module, targets in import_graph().items():
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                found.append(f"{module} ({NAMES[layer_of(module)]}) imports {target} ({NAMES[layer_of(target)]})")
    return found


def test_nothing_below_reaches_up():
    found = upward_imports()
    assert not found, "imports that reach up a layer:\n" + "\n".join(found)


def test_the_layer_map_is_ordered_as_documented():
    assert layer_of("search.cli.cmd_search") > layer_of("workers.tasks") > layer_of("search.engine")
    assert layer_of("search.engine") > layer_of("search.evaluation") > layer_of("search.compress.compose")
    assert layer_of("search.compress.compose") > layer_of("search.recipe")
