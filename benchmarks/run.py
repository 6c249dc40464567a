"""Benchmark proxy-wasm-python in a real Envoy; rewrite this benchmark's sections of docs/benchmarks.md.

    python benchmarks/run.py            # full run, ~12 minutes
    python benchmarks/run.py --quick    # short: 1 start-up round, 2 load cycles, no toolchain fetch
    python benchmarks/run.py --report-only   # re-render the doc from benchmarks/results.json

No filter, the C reference filter, the AssemblyScript SDK and this SDK's
``--backend cpython`` and ``--backend compact`` builds of one filter, side by
side in one run. The work is in the package ``benchmarks/envoy_bench/`` (one role
per module; see its ``__init__``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see ``benchmarks/envoy_bench/cli.py`` for the flags)."""
    # Imported by name: mypy, checking benchmarks/ (no __init__ there), knows the package as
    # ``envoy_bench``, and a static ``benchmarks.envoy_bench`` import would be the same files twice.
    cli = importlib.import_module("benchmarks.envoy_bench.cli")
    return int(cli.main(argv))


if __name__ == "__main__":
    sys.exit(main())
