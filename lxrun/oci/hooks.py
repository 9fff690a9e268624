"""An OCI container's hooks: what config.json's `hooks` name (config.py reads them), as `create` saves them
in the container's state, and running them with the state on their stdin. Light on imports: `start` and
`delete`, which engines call for every container, run the saved ones."""

from __future__ import annotations

from lxrun import plainjson as json
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class Hook(Record):
    __slots__ = ("args", "env", "path", "timeout")
    path: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    timeout: float | None

    def __init__(self, path: str, args: tuple[str, ...], env: tuple[str, ...], timeout: float | None) -> None:
        super().__init__(path=path, args=args, env=env, timeout=timeout)


def saved_hooks(data: dict[str, Any], kind: str) -> list[Hook]:
    """The hooks of `kind` create saved in the container's state."""
    return [Hook(**hook) for hook in data.get("hooks", {}).get(kind, ())]


def run_hooks(hooks: Sequence[Hook], state: dict[str, Any], kind: str, fatal: bool = True) -> None:
    """Each hook with the container's state on its stdin (runtime-spec); a failing one fails the verb
    (create, start), except poststart and poststop, whose failures are only logged."""
    if not hooks:
        return
    import subprocess
    import sys

    payload = json.dumps(state).encode()
    for hook in hooks:
        try:
            done = subprocess.run(
                hook.args,
                executable=hook.path,
                input=payload,
                env=dict(entry.partition("=")[::2] for entry in hook.env),
                capture_output=True,
                timeout=hook.timeout,
                check=False,
            )
            failure = f"exit status {done.returncode}: {done.stderr.decode(errors='replace').strip()}"
            failed = done.returncode != 0
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure, failed = str(exc), True
        if failed and fatal:
            from lxrun.oci.container import OciError  # container.py imports this module

            raise OciError(f"{kind} hook", failure, path=hook.path)
        if failed:
            print(f"{kind} hook {hook.path}: {failure}", file=sys.stderr)
