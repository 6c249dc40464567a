"""proxy-wasm-python compiler: build pipeline and the `proxywasm` CLI."""
