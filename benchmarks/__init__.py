"""lossbridge's benchmarks: ``python -m benchmarks`` times the whole catalog against each framework.

The per-framework scripts (``bench_torch.py``, ``bench_jax.py``, ``bench_tensorflow.py``) still run
on their own; the catalog command is :mod:`benchmarks._catalog_bench`. Rows that miss their target
take their measured cause and what would be needed from ``benchmarks/reasons/*.toml`` (format in
``benchmarks/reasons/README.md``).
"""
