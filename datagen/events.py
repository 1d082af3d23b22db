"""Progress events of a collection, on stderr, so a test can act at a chosen moment of a real run.

Off by default. With `MARL_DATAGEN_EVENTS=1` in the environment, the collector and the dataset
writer print one line per event to stderr (file descriptor 2, unbuffered: the line is out before
the work that follows it starts), in this order for a collection:

    event started                 request checked, env and policy built, staging opened
    event episode-start <i>       episode i begins (i counts from 0 across resumes)
    event step <i> <t>            episode i has played t steps (t = 1, 2, ...), not yet staged
    event episode-staged <i>      episode i is on disk in the staging (renamed into place)
    event writing                 the writer opened the temporary `<path>.writing`
    event writing-episode <i>     episode i's rows went to the temporary
    event renaming                the temporary is complete and synced; the rename comes next
    event written                 the dataset is at its final path

`convert` and `combine` write through the same writer, so they print the writer's four events.

With `MARL_DATAGEN_PAUSE_AT=<event>` (the line without `event `, e.g. `step 2 30` or
`writing-episode 1`), the process prints that event's line (with or without
`MARL_DATAGEN_EVENTS`) and then blocks until it is killed: a test that reads the line knows the
exact state the process is frozen in, however fast or slow the machine. Events printed by the
worker processes of `--workers K` pause those workers, not the main process; pause only
single-process runs.

It imports nothing from datagen, so every layer, the storage writer included, may call it.
"""

from __future__ import annotations

import os
import time

#: Set to 1 to print every event.
EVENTS_VAR = "MARL_DATAGEN_EVENTS"
#: Set to an event (e.g. `step 2 30`) to print it and block there until killed.
PAUSE_VAR = "MARL_DATAGEN_PAUSE_AT"


def emit(name: str, *args: object) -> None:
    """Announce event `name` with `args` (see the module docstring); a no-op unless enabled."""
    printing = os.environ.get(EVENTS_VAR, "") not in ("", "0")
    pause_at = os.environ.get(PAUSE_VAR)
    if not printing and pause_at is None:
        return
    event = " ".join([name, *map(str, args)])
    pausing = event == pause_at
    if printing or pausing:
        os.write(2, f"event {event}\n".encode())  # below sys.stderr: rich may redirect that
    while pausing:
        time.sleep(3600)
