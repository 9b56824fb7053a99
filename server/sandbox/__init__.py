"""An X API v2 emulator for running and testing xcourier without an X developer account.

It plays X, an independent party: nothing here imports xcourier.tools or the rest of
xcourier.server. Names load lazily so importing this package costs almost nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, PUBLIC_CLIENT_ID, SandboxConfig
    from .plans import DEFAULT_PLAN, PLANS
    from .runner import SandboxServer
    from .state import Sandbox

__all__ = [
    "CONFIDENTIAL_CLIENT_ID",
    "CONFIDENTIAL_CLIENT_SECRET",
    "DEFAULT_PLAN",
    "PLANS",
    "PUBLIC_CLIENT_ID",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "create_app",
]

_HOMES = {
    "SandboxConfig": ".config",
    "PUBLIC_CLIENT_ID": ".config",
    "CONFIDENTIAL_CLIENT_ID": ".config",
    "CONFIDENTIAL_CLIENT_SECRET": ".config",
    "PLANS": ".plans",
    "DEFAULT_PLAN": ".plans",
    "Sandbox": ".state",
    "create_app": ".app",
    "SandboxServer": ".runner",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value
