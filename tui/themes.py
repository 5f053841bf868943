"""mlci's own theme: high contrast for projectors, beside Textual's built-in themes."""

from __future__ import annotations

from textual.theme import Theme

__all__ = ["HIGH_CONTRAST"]

HIGH_CONTRAST = Theme(
    name="mlci-high-contrast",
    # Pure black and white with saturated accents: readable from the back of a room, on a
    # washed-out projector, and for low vision.
    primary="#FFFFFF",
    secondary="#00FFFF",
    accent="#FFFF00",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    success="#00FF00",
    warning="#FFFF00",
    error="#FF3030",
    dark=True,
)
"""Selected with the command palette's "Change theme", like the built-in ones."""
