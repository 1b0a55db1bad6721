"""Placeholder: being written."""
Upsample = None
