"""Local stand-in for the Gainsight PX REST API, for tests, benchmarks and demos.

Start one in-process with ``SandboxServer(...).start()`` or from a shell with
``python -m sandbox``. See README.md in this folder for endpoints and settings.
"""

from __future__ import annotations

from .config import DEFAULT_API_KEY, ConfigError, SandboxConfig
from .defaults import DEFAULT_PRODUCT_KEY
from .server import SandboxServer
from .state import SandboxState

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PRODUCT_KEY",
    "ConfigError",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
]
