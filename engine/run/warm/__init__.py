"""The warm runner: a preloaded server in the project's interpreter forks a child for each pytest run."""
