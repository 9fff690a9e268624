"""The signal module's functions and constants without its enums: `import signal` imports enum and
wraps every constant, handler and mask in it, ~1.3 ms of each `lxrun exec`. Values here are plain ints
(signal.Signals names stay the signal module's: `lxrun kill` imports it)."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import *  # noqa: F403 (the same names, typed)
else:
    from _signal import *  # noqa: F403
