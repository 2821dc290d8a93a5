"""One live node per trade memory.

Two ``ats live`` processes on the same account would each scan, enter and manage the same positions: two
entries for one signal, two stops per position, each node cancelling what it takes for the other's orphans.
The node's trade memory (``[live] state_file``) names the account it trades, so the node holds an exclusive
lock beside that file for as long as it runs; a second node with the same file is refused before it connects.
The kernel releases the lock when the holder dies (kill -9 included), so a crash never blocks the restart.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class NodeAlreadyRunningError(Exception):
    """Another live node holds this trade memory."""


def lock_path_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".lock")


@contextmanager
def single_node(state_file: Path | None) -> Iterator[None]:
    """Hold the node lock of ``state_file`` while the block runs; nothing to hold without one (paper mode)."""
    if state_file is None:
        yield
        return
    path = lock_path_for(state_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise NodeAlreadyRunningError(
                f"another ats live node (pid {holder}) is trading with the trade memory {state_file}: stop that "
                "node first (Ctrl-C or SIGTERM); a node for a different account needs its own [live] state_file"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
