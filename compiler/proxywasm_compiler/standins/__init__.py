"""Stand-ins frozen in place of stdlib modules whose C half the wasm CPython lacks.

Each file here is frozen under the name of the module it stands in for (see
``closure.STAND_INS``). A stand-in keeps the module's names importable, so a
package that only *mentions* them at import time (PyJWT's ``from ssl import
SSLContext`` in a client an HS256 filter never uses) builds and runs; using
one raises an error that says why it cannot work inside a filter.
"""
