"""linop's PyTorch engine: torch kernels for linop's operators (imported only on request)."""
