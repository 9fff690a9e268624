"""A task's published ports as elements of lxrun's DNAT maps: added for the task's life, deleted by key.

Call with the host ports already reserved (ports.reserved): an element already under one of those keys
was left by a crashed task, and is replaced.
"""

from __future__ import annotations

import contextlib
import errno

from lxrun.net.nft import NftError, nft
from lxrun.net.rules import add_element, delete_element, parse_elements, publish_elements

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from lxrun.net.config import NetworkConfig
    from lxrun.net.rules import Element
    from lxrun.net.spec import PortMapping


@contextlib.contextmanager
def published(config: NetworkConfig, address: str, mappings: Iterable[PortMapping]) -> Iterator[None]:
    elements = publish_elements(address, mappings)
    if not elements:
        yield
        return
    try:  # removal tolerates elements never added, so an interrupted add leaves nothing either
        _add(config, elements)
        yield
    finally:
        remove(config, elements)


def listed(config: NetworkConfig) -> list[Element]:
    """Every element of the table's maps (none if the table is gone)."""
    try:
        listing = nft().run(f"list table ip {config.table}", json=True, step="list published ports")
    except NftError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise
    return parse_elements(listing)


def remove(config: NetworkConfig, elements: Iterable[Element]) -> None:
    """Delete elements by key, in one transaction; one by one, skipping those already gone, if that fails."""
    elements = list(elements)
    if not elements:
        return
    step, path = "remove published ports", f"ip {config.table}"
    try:
        nft().run("\n".join(delete_element(config.table, element) for element in elements), step=step, path=path)
    except NftError as exc:
        if exc.errno != errno.ENOENT:
            raise
        for element in elements:
            try:
                nft().run(delete_element(config.table, element), step=step, path=path)
            except NftError as one:
                if one.errno != errno.ENOENT:
                    raise


def _add(config: NetworkConfig, elements: list[Element]) -> None:
    step, path = "publish ports", f"ip {config.table}"
    try:
        nft().run("\n".join(add_element(config.table, element) for element in elements), step=step, path=path)
    except NftError as exc:
        if exc.errno != errno.EEXIST:
            raise
        for element in elements:  # a crashed task's element holds a key whose port is now ours
            try:
                nft().run(add_element(config.table, element), step=step, path=path)
            except NftError as one:
                if one.errno != errno.EEXIST:
                    raise
                replace = f"{delete_element(config.table, element)}\n{add_element(config.table, element)}"
                nft().run(replace, step=step, path=path)
