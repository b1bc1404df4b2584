"""Tests inside notebooks: ``test_*`` functions found by reading the cells, run under
pytest in the notebook's own kernel, and pytest's assertion rewriting for every cell.

Nothing here imports pytest: ``discover`` reads cells, ``kernel_code`` writes what the
kernel runs and reads its answer, ``in_kernel`` is the code the kernel runs.
"""
