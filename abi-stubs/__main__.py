"""Regenerate ``_proxywasm.pyi`` from ``abi.toml``: ``python -m proxywasm_abi``."""

from proxywasm_abi import STUB_PATH, render_stub

if __name__ == "__main__":
    STUB_PATH.write_text(render_stub())
    print(f"wrote {STUB_PATH}")
