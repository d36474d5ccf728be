"""`shenjing export`: the command lives in shenjing.onnx.cli (the ONNX exporter's package)."""

from ..onnx.cli import register, run  # noqa: F401
