"""The push confirmation: what will be pushed (branch, remote, commits) before anything happens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from mlci.engine.events import PushPlan
    from textual.app import ComposeResult

__all__ = ["PushConfirmScreen", "PushDecision"]


@dataclass(frozen=True)
class PushDecision:
    """What the person confirmed: this plan, with or without the pre-push check."""

    plan: PushPlan
    no_verify: bool


class PushConfirmScreen(ModalScreen["PushDecision | None"]):
    """Asks before pushing: the branch, the remote, the commits, what stays local, and whether the check runs.

    Dismisses with a `PushDecision` when confirmed, None when cancelled.

    | Key | Action |
    | :- | :- |
    | `enter`, `y` | Push (after the pre-push check, unless it is skipped); enter on Cancel cancels. |
    | `escape`, `n` | Cancel: nothing runs, nothing is pushed. |
    | `v` | Skip the pre-push check, or run it again (the `--no-verify` of `mlci push`). |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,y", "confirm", "Push"),
        Binding("escape,n", "cancel", "Cancel"),
        Binding("v", "toggle_verify", "Skip check"),
    ]

    DEFAULT_CSS = """
    PushConfirmScreen {
        align: center middle;
    }
    PushConfirmScreen > #dialog {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    PushConfirmScreen #commits {
        height: auto;
        max-height: 12;
        margin: 1 0;
    }
    PushConfirmScreen #check {
        margin-bottom: 1;
    }
    PushConfirmScreen #buttons {
        height: auto;
        align-horizontal: right;
    }
    PushConfirmScreen Button {
        margin-left: 2;
    }
    """

    no_verify: reactive[bool] = reactive(False)
    """Skip the pre-push check; shown in plain words whenever it is on."""

    def __init__(self, plan: PushPlan, *, no_verify: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.set_reactive(PushConfirmScreen.no_verify, no_verify)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self._heading(), id="heading")
            with VerticalScroll(id="commits"):
                yield Static(self._commits())
            if self.plan.warnings():
                yield Static(
                    Text("\n".join(f"⚠ {w}" for w in self.plan.warnings()), style="bold yellow"), id="warnings"
                )
            yield Static(self._check_line(), id="check")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Push", id="push", variant="primary")

    def _heading(self) -> Text:
        plan = self.plan
        text = Text.assemble(
            ("Push ", "bold"),
            (plan.branch, "bold green"),
            (" → ", "bold"),
            (plan.remote, "bold cyan"),
            (f"  {plan.remote_url}", "dim"),
        )
        if plan.new_branch:
            text.append(
                f"\nnew branch on {plan.remote}: {plan.branch} will track {plan.remote}/{plan.branch}", style="italic"
            )
        elif plan.upstream:
            text.append(f"\nupstream: {plan.upstream}", style="dim")
        return text

    def _commits(self) -> Text:
        plan = self.plan
        noun = "commit" if plan.total_commits == 1 else "commits"
        lines = [Text(f"{plan.total_commits} {noun} to push:", style="bold")]
        for commit in plan.commits:
            author = (f"  ({commit.author})", "dim")
            lines.append(Text.assemble("  ", (commit.sha, "yellow"), " ", commit.subject, author))
        if plan.total_commits > len(plan.commits):
            lines.append(Text(f"  … and {plan.total_commits - len(plan.commits)} more", style="dim"))
        return Text("\n").join(lines)

    def _check_line(self) -> Text:
        if self.no_verify:
            return Text(
                "Pre-push check: SKIPPED (--no-verify): the tiers and gates will NOT run first  [v] run it",
                style="bold red",
            )
        return Text(
            f"Pre-push check: runs first, on {self.plan.head[:8]} as committed (every tier in order, "
            "the quick model tier, the gates); a red check pushes nothing  [v] skip it",
            style="green",
        )

    def on_mount(self) -> None:
        self.query_one("#push", Button).focus()

    def watch_no_verify(self) -> None:
        if self.is_mounted:
            self.query_one("#check", Static).update(self._check_line())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "push":
            self.action_confirm()
        else:
            self.action_cancel()

    def action_confirm(self) -> None:
        self.dismiss(PushDecision(plan=self.plan, no_verify=self.no_verify))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_toggle_verify(self) -> None:
        self.no_verify = not self.no_verify
