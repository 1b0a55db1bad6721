"""The machinery of the ``linop`` command (`linop.cli`).

    arguments  the syntax of every option, and the flag of every parameter
    operators  the operator the arguments describe; sizes checked before work
    files      matrix files written atomically, spy plots, dense text
    progress   a status line on a terminal
"""
