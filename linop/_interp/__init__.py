"""The machinery of `linop.Upsample`: 1-D interpolation and applying it along an axis.

    matrices  one axis of torch's ``interpolate``: taps and weights, and the matrix
    axis      an axis's taps applied along any axis of an array, and their adjoint
"""
