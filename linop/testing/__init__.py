"""Placeholder: being written."""
dottest = None
