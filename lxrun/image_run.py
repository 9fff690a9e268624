"""What an imported image's config means for a task, as `docker run` reads it: the command from
Entrypoint and Cmd (arguments replace Cmd, --entrypoint replaces Entrypoint and drops Cmd), the
working directory from WorkingDir and the user from User (a name looked up in the image's
/etc/passwd and /etc/group), each unless the task gives its own.

Imported by the planner only for tasks on image stacks or with an entrypoint: others never load it.
"""

from __future__ import annotations

from lxrun.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.spec import TaskSpec
    from lxrun.store.imageconfig import ImageConfig
    from lxrun.store.stacks import ResolvedStack


def command(spec: TaskSpec, image: ImageConfig | None) -> tuple[str, ...]:
    if spec.entrypoint is not None:
        argv = (*spec.entrypoint, *(spec.argv or ()))
    else:
        entrypoint = image.entrypoint if image is not None and image.entrypoint else ()
        cmd = spec.argv if spec.argv is not None else image.cmd if image is not None and image.cmd else ()
        argv = (*entrypoint, *cmd)
    if not argv or not argv[0]:
        hint = "put the command after --, e.g. -- echo hello"
        if image is not None:
            hint = f"stack {spec.stack}'s image has no Entrypoint or Cmd: {hint}"
        raise SpecError("command", "no command given", hint=hint)
    return argv


def _lookup(stack: ResolvedStack, file: str, name: str) -> tuple[int, int] | None:
    """(id, primary gid) of `name` in the stack's /etc/passwd or /etc/group (top-most layer having it)."""
    for layer in reversed(stack.layer_paths):
        try:
            with open(f"{layer}/etc/{file}") as opened:
                lines = opened.read().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            continue
        for line in lines:
            fields = line.split(":")
            if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                gid = fields[3] if file == "passwd" and len(fields) >= 4 else fields[2]
                return int(fields[2]), int(gid) if gid.isdigit() else 0
        return None
    return None


def image_user(stack: ResolvedStack, text: str) -> tuple[int, int | None]:
    """docker's User: UID, NAME, UID:GID, NAME:GROUP (a name's group is its passwd one)."""
    user, _, group = text.partition(":")
    gid: int | None = None
    if user.isdigit():
        uid = int(user)
    else:
        found = _lookup(stack, "passwd", user)
        if found is None:
            raise SpecError("user", f"the image's User {user!r} is not in its /etc/passwd", path=stack.ref)
        uid, gid = found
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = _lookup(stack, "group", group)
            if found is None:
                raise SpecError("user", f"the image's group {group!r} is not in its /etc/group", path=stack.ref)
            gid = found[0]
    return uid, gid


def image_spec(spec: TaskSpec, stack: ResolvedStack) -> TaskSpec:
    """`spec` with the command, workdir and user its stack's image config gives it."""
    image = stack.image
    changes: dict[str, object] = {"argv": command(spec, image)}
    if image is not None and image.workdir and spec.workdir is None:
        changes["workdir"] = image.workdir
    if image is not None and image.user and spec.security.user is None:
        changes["security"] = spec.security.replace(user=image_user(stack, image.user))
    return spec.replace(**changes)
