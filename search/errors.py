"""User-facing errors: each carries one readable line that says what to fix.

Every door (CLI, HTTP, worker) turns a DeviceFitError into its own form of a
clear refusal: exit code 2 with the message, HTTP 4xx with the message.
Anything else escaping is a bug.
"""


class DeviceFitError(ValueError):
    """Base of all errors caused by the user's input."""


class RecipeError(DeviceFitError):
    """A compression recipe is malformed or does not fit the model."""


class ModelError(DeviceFitError):
    """A model reference cannot be loaded or its architecture is unsupported."""


class DeviceError(DeviceFitError):
    """Unknown device profile or malformed profile data."""


class SpecError(DeviceFitError):
    """A search request (SearchSpec) or a workload/unit string is malformed."""


class InfeasibleError(DeviceFitError):
    """No candidate can meet the budget."""
