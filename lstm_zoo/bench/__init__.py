"""Speed measurements behind ``lstm-zoo bench`` (scripts in ``benchmarks/`` call them too).

Benchmarks are commands, never timed assertions in tests.
"""
