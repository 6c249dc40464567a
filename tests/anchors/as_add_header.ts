// add_header written with the AssemblyScript SDK (npm @solo-io/proxy-runtime 0.1.8,
// assemblyscript 0.14): logs the request path, adds x-hello: world to the response.
// (Its plugin configuration is not read: that SDK version's RootContext.onConfigure
// passes the configuration's size where the host expects the size's address, so
// getConfiguration() comes back empty.)
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log,
  LogLevelValues,
} from "@solo-io/proxy-runtime";

class AddHeaderRoot extends RootContext {
  value: string = "world";

  createContext(context_id: u32): Context {
    return new AddHeader(context_id, this);
  }
}

class AddHeader extends Context {
  root: AddHeaderRoot;

  constructor(context_id: u32, root_context: AddHeaderRoot) {
    super(context_id, root_context);
    this.root = root_context;
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    log(LogLevelValues.info, "as: " + stream_context.headers.request.get(":path"));
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-hello", this.root.value);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => {
  return new AddHeaderRoot(context_id);
}, "");
