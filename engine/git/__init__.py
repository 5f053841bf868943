"""The project's git repository: its state, the push, the pre-push hook."""
