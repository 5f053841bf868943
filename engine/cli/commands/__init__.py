"""One module per `mlci` subcommand: argument definitions and the glue to the engine.

Each module defines `add_arguments(parser)` and `run(args) -> int`, and keeps its
top-level imports light: `cli` imports only the module of the command being run.
"""
