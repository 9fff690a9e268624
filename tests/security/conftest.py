"""Escape attempts run from inside tasks; the state root and leak checks are the integration tests'."""

from tests.integration.conftest import leaves_nothing_behind, volume_dir

__all__ = ["leaves_nothing_behind", "volume_dir"]
