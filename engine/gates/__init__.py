"""Model gates: where each gate is evaluated (`evaluate`), the model and metrics it reads,
the baseline, the registry (challenger, champion), and the pull-request report."""
