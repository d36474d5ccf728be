"""`shenjing serve`: the command lives in shenjing.serve (the server's package)."""

from ..serve import register  # noqa: F401
from ..serve import run_serve as run  # noqa: F401
