"""What an imported image's config says about running it, kept with the stack version: Entrypoint, Cmd,
WorkingDir, User, and where it came from (the source and the config's digest, the image id).

Its Env and Labels are kept as the version's env and labels, as a built stack's are. Plain data
here; what it means for a task (docker run's rules) is lxrun.image_run's.
"""

from __future__ import annotations

from lxrun.errors import StoreError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


class ImageConfig(Record):
    __slots__ = ("cmd", "digest", "entrypoint", "source", "user", "workdir")
    digest: str
    source: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    workdir: str
    user: str

    def __init__(
        self,
        digest: str,
        source: str,
        entrypoint: Iterable[str] | None = None,
        cmd: Iterable[str] | None = None,
        workdir: str = "",
        user: str = "",
    ) -> None:
        super().__init__(
            digest=digest,
            source=source,
            entrypoint=None if entrypoint is None else tuple(entrypoint),
            cmd=None if cmd is None else tuple(cmd),
            workdir=workdir,
            user=user,
        )

    def to_json(self) -> dict[str, Any]:
        data = self.as_dict()
        for key in ("entrypoint", "cmd"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


def _strings(source: str, field: str, value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and "\0" not in item for item in value):
        raise StoreError("stack import", f"its config's {field} is not a list of strings", path=source)
    return value


def _string(source: str, field: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or "\0" in value:
        raise StoreError("stack import", f"its config's {field} is not a string", path=source)
    return value


def from_image(source: str, digest: str, config: dict[str, Any]) -> tuple[ImageConfig, dict[str, str], dict[str, str]]:
    """The ImageConfig, env and labels of an image's config JSON (its `config` object)."""
    run = config.get("config") or {}
    if not isinstance(run, dict):
        raise StoreError("stack import", "its config's config is not an object", path=source)
    env = {}
    for item in _strings(source, "Env", run.get("Env")) or []:
        key, _, value = item.partition("=")
        if key:
            env[key] = value
    labels = run.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise StoreError("stack import", "its config's Labels are not strings", path=source)
    image = ImageConfig(
        digest,
        source,
        _strings(source, "Entrypoint", run.get("Entrypoint")),
        _strings(source, "Cmd", run.get("Cmd")),
        _string(source, "WorkingDir", run.get("WorkingDir")),
        _string(source, "User", run.get("User")),
    )
    return image, env, {str(key): value for key, value in labels.items()}
