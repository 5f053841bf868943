"""The headless `mlci` command: the entry point, one module per subcommand, the plain printer."""
