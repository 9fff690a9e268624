# `make demo` and `make test` set up everything they need themselves on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
# The real interpreter, not a pyenv shim (a shim adds 60-80 ms to every `lxrun` start).
PYTHON := /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
# `lxrun` and `lxrun-oci` started without site processing (~1-3 ms of every start; bin/lxrun sets its own
# path): pip writes no flags into a script's first line, so they are added after each install.
NO_SITE = sed -i '1s|^\(\#!.*python[0-9.]*\)$$|\1 -S|' $(BIN)/lxrun $(BIN)/lxrun-oci
# lxc-dev and pkg-config build python-lxc; apparmor (which lxc only recommends) lets liblxc confine containers
# where the kernel enforces AppArmor, as Debian's does (without it, LXC refuses to start them); docker.io (with
# tini, its init) and curl run the private dockerd of `make test` (scripts/dockerd); skopeo and docker-registry
# (a local registry v2) test imports from registries; podman and conmon run lxrun-oci as podman's runtime.
HOST_PACKAGES := python3-venv python3-dev gcc libc6-dev libffi-dev libseccomp-dev make busybox-static util-linux \
                 mmdebstrap nftables lxc lxc-dev apparmor pkg-config docker.io tini curl \
                 skopeo docker-registry podman conmon
BENCH_PACKAGES := bubblewrap crun
# `lxrun` is the native launcher (native/client.c): `lxrun exec` with a socket configured relays to `lxrun serve`
# without starting Python; anything else runs the Python command line pip wrote, kept beside it as lxrun-python.
LAUNCHER = if head -c2 $(BIN)/lxrun | grep -q '\#!'; then mv $(BIN)/lxrun $(BIN)/lxrun-python; fi; \
           install -m 755 lxrun/_lxrun_client $(BIN)/lxrun

.PHONY: demo test test-v2 lint bench bench-v2 bench-stacks bench-images soak host-deps venv clean

host-deps:
	@scripts/install-host-deps $(HOST_PACKAGES)

$(BIN)/.installed: pyproject.toml setup.py bin/lxrun bin/lxrun-oci $(wildcard native/*) | host-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,backends]' --config-settings editable_mode=compat
	$(NO_SITE)
	$(LAUNCHER)
	# Byte-compiled now: every `lxrun exec` would otherwise compile what it imports if PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/python -m compileall -q lxrun
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The docker backend's tests run against a dockerd of their own, stopped and cleaned up afterwards; it has
# lxrun-oci as its runtime `lxrun` (tests/integration/test_oci_docker.py).
test: lint
	LXRUN_OCI_RUNTIME=$(CURDIR)/$(BIN)/lxrun-oci scripts/dockerd run -- $(BIN)/pytest -m "not v2only"

# The v2-marked tests in a pure cgroup-v2 qemu guest (../shared/tools/v2vm builds its image once). State
# roots go on the guest's ext4 root disk, not on its /tmp: tmpfs takes idmapped mounts only from Linux 6.3.
test-v2:
	scripts/in-v2vm env LXRUN_MUST_WORK=1 python -m pytest -m "(v2 or v2only) and not bridge" -p no:cacheprovider \
	    --basetemp=/var/tmp/lxrun-pytest -W ignore::pytest.PytestConfigWarning -q

# The start-up benchmark in that guest: on v2 tasks are born in their cgroup (next to a migration).
bench-v2:
	scripts/in-v2vm env TMPDIR=/var/tmp python benchmarks/startup.py

# Thousands of tasks of every kind, then gc: fails on any leak (CI runs TASKS=1000).
TASKS ?= 10000
soak: venv
	$(BIN)/python benchmarks/soak.py --tasks $(TASKS)

bench: venv
	@scripts/install-host-deps $(BENCH_PACKAGES)
	$(BIN)/pip install -q -e '.[bench]' --config-settings editable_mode=compat
	$(NO_SITE)
	$(LAUNCHER)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/steps.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/floor.py
	$(BIN)/python benchmarks/report.py
	scripts/dockerd run -- $(BIN)/python benchmarks/compare.py
	LXRUN_OCI_RUNTIME=$(CURDIR)/$(BIN)/lxrun-oci scripts/dockerd run -- $(BIN)/python benchmarks/oci.py

# Builds every base and stack in a throw-away state root (needs the Debian mirror; a few minutes).
bench-stacks: venv
	$(BIN)/python benchmarks/stacks.py

# `lxrun stack import` of a ~225 MB docker save tarball next to `docker load` of it (a private dockerd).
bench-images: venv
	scripts/dockerd run -- $(BIN)/python benchmarks/images.py

clean:
	rm -rf $(VENV) build *.egg-info lxrun/_native.* lxrun/_lxrun_init lxrun/_lxrun_client
