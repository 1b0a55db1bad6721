"""The machinery of the convolutions; the public classes are in `linop.conv`.

Data flows one way through these modules::

    geometry  validated per-axis sizes (ConvGeometry)
    taps      where every output tap reads (tap tables)
    padding   PyTorch's padding modes and their adjoints
    toeplitz  the explicit CSR matrix, and applying it   } the methods
    im2col    strided gathers and one GEMM per group     }
    plan      which method "auto" takes
    engine    a definition + a method, both directions
"""
