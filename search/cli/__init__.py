"""search-cli: one module per subcommand (cmd_<name>.py), dispatched by main.py."""
