"""Stdlib features whose imports happen inside functions or by codec name.

Each response gets one header per feature, computed in ``on_http_response_headers``
(not at import time, so the lazy imports run inside the compiled module):
``Counter.most_common`` (imports heapq), ``uuid.uuid5`` (hashlib), ``str.encode``
with codecs looked up by name, and ``ElementTree.tostring`` (``us-ascii``).
"""

import collections
import uuid
import xml.etree.ElementTree as ET

import proxywasm
from proxywasm import Action, HttpContext, RootContext

TEXT = "abracadabra café"


def features() -> dict[str, str]:
    """Every value the test compares, natively and compiled."""
    element = ET.Element("a", {"k": "v"})
    element.text = "é"
    return {
        "x-most-common": repr(collections.Counter(TEXT).most_common(2)),
        "x-uuid5": str(uuid.uuid5(uuid.NAMESPACE_DNS, "example.com")),
        "x-utf16le": "x".encode("utf-16-le").hex(),
        "x-cp1252": TEXT.encode("cp1252").hex(),
        "x-utf8sig": TEXT.encode("utf-8-sig").hex(),
        "x-latin1": TEXT.encode("latin-1").hex(),
        "x-ascii": b"plain".decode("us-ascii"),
        "x-idna": "bücher.example".encode("idna").decode("ascii"),
        "x-unicode-escape": TEXT.encode("unicode_escape").decode("ascii"),
        "x-etree": ET.tostring(element).decode("ascii"),
    }


class Features(HttpContext["Root"]):
    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        for name, value in features().items():
            self.set_http_response_header(name, value)
        return Action.CONTINUE


class Root(RootContext):
    http_context = Features


proxywasm.set_root_context(Root)
