"""Development tools, not shipped: labels from the teacher, training, evaluation, the layout builder.

Depends on the runtime package ``engine``; the runtime never imports this package (tests/engine/test_boundaries.py).
Command line: ``python -m training evaluate``; each other tool runs as ``python -m training.<tool>``.
"""
