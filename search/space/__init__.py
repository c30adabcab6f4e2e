"""The model as data: layer shapes and roles, and the search space over recipes."""
