"""mlci's headless engine: watch, plan, run, gate, push. Never imports Textual or Rich."""

__version__ = "0.1.0"
