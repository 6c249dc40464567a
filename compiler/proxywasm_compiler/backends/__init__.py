"""Build backends other than the default CPython pipeline.

Each backend is a subpackage exposing one ``build_*`` function with the
signature of :func:`proxywasm_compiler.build.build_cpython`; ``build.py``
registers them in ``BACKENDS``.
"""
