"""The watch-plan-run loop: what changed (`watch`), which tier it needs and why (`plan`),
the session that runs the tiers (`session`), the pre-push check, and the history of verdicts."""
