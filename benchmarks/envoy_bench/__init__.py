"""Envoy benchmark of proxy-wasm-python against the AssemblyScript SDK, a C filter and no filter.

``python benchmarks/run.py`` is the entry point. One role per module:

* :mod:`.system` - the machine: ``/proc`` readers (CPU, RSS), machine facts, logging;
* :mod:`.filters` - the variants and their builds (AssemblyScript SDK from npm, this
  SDK with ``--backend cpython`` and ``--backend compact``, the C reference filter),
  module sizes and build times;
* :mod:`.process` - one Envoy process (bootstrap, start, stop by PID) and the load
  generator (wrk);
* :mod:`.measure` - the measurement plan: start-up rounds, idle memory, interleaved
  load cycles, and the medians over them;
* :mod:`.report` - the markdown sections this benchmark owns in ``docs/benchmarks.md``
  (between marker comments; every other section of that page is kept byte for byte);
* :mod:`.cli` - the command line and the order of the run.
"""
