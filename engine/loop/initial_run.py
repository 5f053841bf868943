"""A verdict when watching starts: run the code tier at once, unless it was green for exactly this tree.

A person who opens mlci beside the editor wants to know at once whether the code is green,
as ptw and vitest tell them; re-running a tier that is already known green for the same
content only costs time. "The same content" is the working tree as git sees it (tracked and
untracked files, `.gitignore` honoured; the content baseline of `loop.fingerprint`), plus the
tier's interpreter and its installed distributions, and the tier's config. The keys of the
code tier's green runs are kept in `.mlci/green-trees.json`, the newest `KEEP` of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from mlci.engine.config.loader import Config
from mlci.engine.errors import MlciError
from mlci.engine.events import Event, Notice, Tier, TierFinished, TierStarted, Verdict

__all__ = ["GREEN_TREES_FILE", "TreeProofs", "tree_key"]

GREEN_TREES_FILE = Path(".mlci") / "green-trees.json"
KEEP = 50
"""Green tree keys remembered: enough to go back and forth between a few branches."""

Emit = Callable[[Event], None]


def _installed(config: Config) -> str:
    """The tier interpreter and its installed distributions: the same reading as the pre-push check's proofs."""
    from mlci.engine.loop.proof import installed_packages
    from mlci.engine.run.interpreter import project_interpreter

    return installed_packages(str(project_interpreter(config).path))


def tree_key(config: Config) -> str:
    """The code tier's content key of the project as it is now; raises MlciError when git cannot tell."""
    from mlci.engine.git.state import find_git_dir
    from mlci.engine.loop.fingerprint import Fingerprints

    git_dir = find_git_dir(config.root)
    if git_dir is None:
        raise MlciError(f"{config.root} is not a git repository")
    baseline = Fingerprints(config.root, Path(git_dir))
    try:
        baseline.build(())
        tree = baseline.digest()
    finally:
        baseline.close()
    tier = config.tier(Tier.CODE)
    parts = {
        "tree": tree,
        "environment": hashlib.sha256(_installed(config).encode()).hexdigest(),
        "tier": repr(tier),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class TreeProofs:
    """Remembers the trees whose code tier was green, and decides the run at start."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._path = config.root / GREEN_TREES_FILE
        self._lock = threading.Lock()
        self._pending: dict[int, threading.Thread] = {}
        self._keys: dict[int, str] = {}

    def _load(self) -> list[str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [str(k) for k in data] if isinstance(data, list) else []

    def _remember(self, key: str) -> None:
        with self._lock:
            keys = [*[k for k in self._load() if k != key][-(KEEP - 1) :], key]
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(keys), encoding="utf-8")
            tmp.replace(self._path)

    def proven(self) -> bool:
        """Whether the code tier was green for exactly this tree."""
        try:
            return tree_key(self.config) in self._load()
        except (MlciError, OSError):
            return False

    def initial_run(self, session_request: Callable[..., None], emit: Emit) -> None:
        """Ask for the code tier now, unless it is proven green for this tree (then say so).

        `session_request` is the session's `request`.
        """
        if Tier.CODE not in self.config.tiers:
            return
        if self.proven():
            emit(Notice("info", "the code tier was green for exactly this tree: no run at start", source="watch"))
            return
        session_request([Tier.CODE], reason="mlci started: no green verdict for this tree yet")

    def recording(self, emit: Emit) -> Emit:
        """`emit`, also remembering the tree of every green code run (keyed as it was when the run started)."""

        def both(event: Event) -> None:
            emit(event)
            if isinstance(event, TierStarted) and event.tier is Tier.CODE:
                self._key_at_start(event.run_id)
            elif isinstance(event, TierFinished) and event.tier is Tier.CODE:
                self._finished(event)

        return both

    def _key_at_start(self, run_id: int) -> None:
        def compute() -> None:
            with contextlib.suppress(MlciError, OSError):
                self._keys[run_id] = tree_key(self.config)

        # Beside the run, not before it: the key costs a few git commands, the verdict should not wait.
        thread = threading.Thread(target=compute, name=f"mlci-tree-key-{run_id}", daemon=True)
        self._pending[run_id] = thread
        thread.start()

    def _finished(self, event: TierFinished) -> None:
        thread = self._pending.pop(event.run_id, None)
        if thread is None or event.verdict is not Verdict.PASSED:
            self._keys.pop(event.run_id, None)
            return
        thread.join()
        key = self._keys.pop(event.run_id, None)
        if key is not None:
            with contextlib.suppress(OSError):
                self._remember(key)
