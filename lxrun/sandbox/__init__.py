"""The one composer of sandboxes: the helper wrapper (the only importer of `lxrun._native`), mount plans,
user namespaces, stdio, supervision, capabilities and seccomp.

`compose` turns a SandboxPlan into a running pid 1; the native backend and stack builds both start
their sandboxes through it.
"""
