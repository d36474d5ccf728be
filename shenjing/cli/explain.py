"""`shenjing explain`: the command lives in shenjing.explain.cli (the attribution package)."""

from ..explain.cli import register  # noqa: F401
from ..explain.cli import run_explain as run  # noqa: F401
