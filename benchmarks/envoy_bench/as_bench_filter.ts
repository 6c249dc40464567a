// The benchmark's filter with the AssemblyScript SDK (npm @solo-io/proxy-runtime 0.1.8,
// assemblyscript 0.14): read :path and x-custom, one debug log, add x-hello: world.
// The same work as bench_filter.py beside it.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log,
  LogLevelValues,
} from "@solo-io/proxy-runtime";

class BenchRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Bench(context_id, this);
  }
}

class Bench extends Context {
  constructor(context_id: u32, root_context: BenchRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    const custom = stream_context.headers.request.get("x-custom");
    log(LogLevelValues.debug, "bench: " + path + " " + custom);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-hello", "world");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => {
  return new BenchRoot(context_id);
}, "");
