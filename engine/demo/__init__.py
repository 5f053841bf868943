"""The demo sandbox: a copy of sample_project/ with git, DVC, MLflow and a remote, all local."""
