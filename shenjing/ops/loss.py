"""Placeholder: fused loss ops are being written."""
