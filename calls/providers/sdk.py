"""Loading a cloud vendor's SDK at the right moment."""

from __future__ import annotations

import importlib


def sdk_load(*modules: str) -> None:
    """Import ``modules`` now.

    A vendor SDK takes a few hundred ms to import. Engines are built off the
    event loop when a call is set up, so a cloud engine's constructor calls
    this: the cost stays out of the first sentence's deadline, and out of
    processes that never build the engine (importing the registry stays cheap).
    """
    for module in modules:
        importlib.import_module(module)
