"""Ship a compiled filter: Envoy bootstrap, Istio ``WasmPlugin``, OCI image layout.

Used by ``proxywasm envoy-config``, ``proxywasm istio`` and ``proxywasm oci``.
Nothing here needs a network or a tool outside the standard library:

- :func:`dump_yaml` is a small YAML emitter for the plain dicts and lists
  these commands print (no PyYAML dependency);
- :func:`envoy_bootstrap` wraps :func:`proxywasm_compiler.envoy.envoy_config`
  with the ports of a hand-written ``envoy.yaml`` (listener 10000, upstream
  8080, admin 9901);
- :func:`wasm_plugin` makes an Istio ``extensions.istio.io/v1alpha1``
  ``WasmPlugin``;
- :func:`oci_image` / :func:`write_oci_layout` package a module as a Wasm OCI
  image in an OCI image layout directory, which ``oras cp``, ``crane push``
  or ``skopeo copy`` push to a registry unchanged (so the manifest digest
  printed here is the one the registry serves).

Image formats (the two variants of the Wasm image specification,
github.com/solo-io/wasm/blob/master/spec, both pulled by Istio's agent):

``oci`` (default)
    Custom artifact media types: the manifest's config *and* its first layer
    are the runtime config ``runtime-config.json``
    (``application/vnd.module.wasm.config.v1+json``), the second layer is the
    raw module (``application/vnd.module.wasm.content.layer.v1+wasm``). This
    is the layout ``wasme push`` produced; Istio's fetcher wants exactly
    these two layers.
``compat``
    Standard media types, for registries that refuse custom ones: one
    ``application/vnd.oci.image.layer.v1.tar+gzip`` layer holding
    ``plugin.wasm``, an ``application/vnd.oci.image.config.v1+json`` config
    and the manifest annotation ``module.wasm.image/variant: compat``.

Everything is deterministic (no timestamps; a gzip with mtime 0): the
manifest digest depends only on the module's bytes, its file name (the
layer's title) and the variant. So ``proxywasm istio`` computes the digest
``proxywasm oci`` writes without needing the layout (or reads it from the
layout, :func:`layout_digest`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MEDIA_TYPES",
    "DeployError",
    "OciImage",
    "dump_yaml",
    "envoy_bootstrap",
    "layout_digest",
    "module_sha256",
    "oci_image",
    "read_module",
    "wasm_plugin",
    "write_oci_layout",
]


class DeployError(RuntimeError):
    """A module, an option or an output directory the deploy commands cannot use."""


# --------------------------------------------------------------------------- YAML

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
# Plain scalars a YAML 1.1 or 1.2 reader would not read back as a string.
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _RESERVED:
            return value
        # A JSON string is a valid YAML double-quoted scalar.
        return json.dumps(value)
    raise TypeError(f"dump_yaml: cannot emit {type(value).__name__}")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"dump_yaml: mapping keys must be str, got {type(key).__name__}")
    return _scalar(key)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_key(key)}:")
                out.extend(_lines(item, indent + 2))
            else:
                out.append(f"{pad}{_key(key)}: {_inline(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = _lines(item, indent + 2)
                # "- " takes the place of the first line's indentation.
                out.append(f"{pad}- {nested[0][indent + 2 :]}")
                out.extend(nested[1:])
            else:
                out.append(f"{pad}- {_inline(item)}")
    else:
        out.append(f"{pad}{_inline(value)}")
    return out


def _inline(value: Any) -> str:
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    return _scalar(value)


def dump_yaml(value: Any) -> str:
    """Block-style YAML for dicts, lists, str, int, float, bool and None.

    Strings are plain when that is unambiguous and JSON-quoted otherwise, so
    any YAML 1.1 or 1.2 reader (Envoy's, kubectl's, PyYAML) reads back the
    same value.
    """
    return "\n".join(_lines(value, 0)) + "\n"


# ------------------------------------------------------------------------ modules


def read_module(path: Path) -> bytes:
    """The bytes of a ``.wasm`` file; :class:`DeployError` if it is missing or not wasm."""
    path = Path(path)
    if not path.is_file():
        raise DeployError(f"no such module: {path}")
    data = path.read_bytes()
    if data[:4] != b"\0asm":
        raise DeployError(
            f"{path} is not a WebAssembly module (it does not start with \\0asm); "
            "build one with `proxywasm build filter.py`"
        )
    return data


def module_sha256(path: Path) -> str:
    """Hex sha256 of a module's bytes."""
    return hashlib.sha256(read_module(path)).hexdigest()


def _host_port(text: str, option: str, *, name_ok: bool = False) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise DeployError(f"{option} must be HOST:PORT, got {text!r}")
    host = host.strip("[]")
    if not name_ok and not _is_ip(host):
        # Envoy binds to addresses: a name would be its "malformed IP address".
        raise DeployError(
            f"{option} needs an IP address (Envoy binds to addresses, not names), got {text!r}; "
            "e.g. 127.0.0.1 or 0.0.0.0"
        )
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def envoy_bootstrap(
    wasm: Path,
    *,
    configuration: str = "",
    root_id: str = "",
    vm_id: str = "",
    listen: str = "127.0.0.1:10000",
    upstream: str = "127.0.0.1:8080",
    admin: str = "127.0.0.1:9901",
    fail_open: bool = False,
    name: str | None = None,
    failure_policy: str = "closed",
) -> dict[str, Any]:
    """An Envoy bootstrap: ``listen`` -> the wasm HTTP filter -> router -> ``upstream``.

    ``failure_policy``: ``closed`` (503 once the VM failed), ``open`` or
    ``reload`` (a fresh VM); ``fail_open=True`` means ``open``. An ``upstream``
    host name (``backend:8080``) makes a ``STRICT_DNS`` cluster: Envoy resolves
    it where it runs, which need not be where this config is printed.
    """
    from .envoy import FilterSpec, envoy_config

    read_module(wasm)
    spec = FilterSpec(
        Path(wasm),
        configuration=configuration,
        root_id=root_id,
        vm_id=vm_id,
        fail_open=fail_open,
        failure_policy=failure_policy,
        name=name or Path(wasm).stem,
    )
    upstream_host, upstream_port = _host_port(upstream, "--upstream", name_ok=True)
    config = envoy_config(
        [spec],
        (upstream_host, upstream_port),
        listen=_host_port(listen, "--listen"),
        admin=_host_port(admin, "--admin"),
    )
    if not _is_ip(upstream_host):
        for cluster in config["static_resources"]["clusters"]:
            if cluster["name"] == "upstream":
                cluster["type"] = "STRICT_DNS"
                cluster["dns_lookup_family"] = "V4_PREFERRED"
    return config


# -------------------------------------------------------------------------- Istio

PHASES = ("AUTHN", "AUTHZ", "STATS")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "proxywasm"


def wasm_plugin(
    *,
    url: str,
    sha256: str,
    name: str,
    namespace: str | None = None,
    plugin_config: dict[str, Any] | None = None,
    phase: str | None = None,
    priority: int | None = None,
    selector: dict[str, str] | None = None,
    fail_open: bool = False,
    root_id: str = "",
    image_pull_policy: str | None = "IfNotPresent",
    failure_policy: str = "closed",
) -> dict[str, Any]:
    """An Istio ``WasmPlugin`` resource (``extensions.istio.io/v1alpha1``).

    ``failure_policy`` becomes ``failStrategy``: ``closed`` -> ``FAIL_CLOSE``,
    ``open`` -> ``FAIL_OPEN``, ``reload`` -> ``FAIL_RELOAD`` (Istio 1.24 and
    later); ``fail_open=True`` means ``open``.
    """
    strategies = {"closed": "FAIL_CLOSE", "open": "FAIL_OPEN", "reload": "FAIL_RELOAD"}
    if failure_policy not in strategies:
        raise DeployError(
            f"--failure-policy must be one of {', '.join(strategies)}, got {failure_policy!r}"
        )
    if fail_open:
        failure_policy = "open"
    if not _DNS_LABEL.match(name):
        raise DeployError(
            f"--name {name!r} is not a Kubernetes resource name "
            "(lower-case letters, digits and '-', starting and ending alphanumeric)"
        )
    if phase is not None and phase not in PHASES:
        raise DeployError(f"--phase must be one of {', '.join(PHASES)}, got {phase!r}")
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {}
    if selector:
        spec["selector"] = {"matchLabels": dict(selector)}
    spec["url"] = url
    spec["sha256"] = sha256
    if image_pull_policy and url.startswith("oci://"):
        spec["imagePullPolicy"] = image_pull_policy
    if root_id:
        spec["pluginName"] = root_id
    if phase:
        spec["phase"] = phase
    if priority is not None:
        spec["priority"] = priority
    spec["failStrategy"] = strategies[failure_policy]
    if plugin_config is not None:
        spec["pluginConfig"] = plugin_config
    return {
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": metadata,
        "spec": spec,
    }


def default_plugin_name(wasm: Path) -> str:
    """A Kubernetes name from a module's file name: ``my_filter.wasm`` -> ``my-filter``."""
    return _dns_name(Path(wasm).stem)


# ---------------------------------------------------------------------------- OCI

MEDIA_TYPES = {
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "index": "application/vnd.oci.image.index.v1+json",
    "wasm_config": "application/vnd.module.wasm.config.v1+json",
    "wasm_layer": "application/vnd.module.wasm.content.layer.v1+wasm",
    "image_config": "application/vnd.oci.image.config.v1+json",
    "tar_gzip_layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"
VARIANTS = ("oci", "compat")
ABI_VERSIONS = ["v0.2.1"]
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes, title: str | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": media_type, "digest": _digest(data), "size": len(data)}
    if title:
        desc["annotations"] = {TITLE: title}
    return desc


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


@dataclass
class OciImage:
    """One Wasm OCI image: the manifest and every blob it names."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the manifest: what a registry and Istio's ``sha256`` check see."""
        return _digest(self.manifest)


def _plugin_tar_gz(module: bytes) -> tuple[bytes, bytes]:
    """(tar.gz, tar) of one file ``plugin.wasm``, byte-for-byte reproducible."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(module)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(module))
    raw = tar_buf.getvalue()
    gz_buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz_buf, mtime=0) as gz:
        gz.write(raw)
    return gz_buf.getvalue(), raw


def oci_image(wasm: Path, *, variant: str = "oci") -> OciImage:
    """The Wasm OCI image of a module (see the module docstring for the variants)."""
    if variant not in VARIANTS:
        raise DeployError(f"--variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    module = read_module(wasm)
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> bytes:
        blobs[_digest(data)] = data
        return data

    if variant == "oci":
        runtime_config = blob(
            _json_bytes(
                {
                    "type": "envoy_proxy",
                    "abiVersions": ABI_VERSIONS,
                    "config": {"rootIds": []},
                }
            )
        )
        config = _descriptor(MEDIA_TYPES["wasm_config"], runtime_config)
        layers = [
            _descriptor(MEDIA_TYPES["wasm_config"], runtime_config, "runtime-config.json"),
            _descriptor(MEDIA_TYPES["wasm_layer"], blob(module), Path(wasm).name),
        ]
        annotations = {
            "module.wasm.runtime/type": "envoy_proxy",
            "module.wasm.runtime/abi_version": ",".join(ABI_VERSIONS),
        }
    else:
        layer, tar = _plugin_tar_gz(module)
        image_config = blob(
            _json_bytes(
                {
                    "architecture": "wasm",
                    "os": "wasip1",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
                }
            )
        )
        config = _descriptor(MEDIA_TYPES["image_config"], image_config)
        layers = [_descriptor(MEDIA_TYPES["tar_gzip_layer"], blob(layer))]
        annotations = {"module.wasm.image/variant": "compat"}
    manifest = _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPES["manifest"],
            "config": config,
            "layers": layers,
            "annotations": annotations,
        }
    )
    return OciImage(manifest=manifest, blobs=blobs)


def layout_digest(layout: Path, tag: str | None = None) -> str:
    """The manifest digest (``sha256:<hex>``) of an OCI image layout, for ``tag`` if given."""
    index_path = Path(layout) / "index.json"
    if not (Path(layout) / "oci-layout").is_file() or not index_path.is_file():
        raise DeployError(f"{layout} is not an OCI image layout (no oci-layout / index.json)")
    try:
        manifests = json.loads(index_path.read_text())["manifests"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeployError(f"{index_path} is not an OCI image index: {exc}") from None
    if tag is not None:
        tagged = [m for m in manifests if m.get("annotations", {}).get(REF_NAME) == tag]
        if tagged:
            manifests = tagged
    if len(manifests) != 1:
        raise DeployError(f"{index_path} lists {len(manifests)} manifests; expected exactly one")
    return str(manifests[0]["digest"])


def write_oci_layout(
    wasm: Path, out_dir: Path, *, tag: str = "latest", variant: str = "oci"
) -> OciImage:
    """Write the image as an OCI image layout at ``out_dir``; returns the image.

    ``out_dir`` must not exist or be an empty directory. The layout is written
    next to it under a temporary name and renamed into place, so a failure
    never leaves a half-written layout behind.
    """
    if not _TAG.match(tag):
        raise DeployError(
            f"--tag {tag!r} is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DeployError(
            f"{out_dir} exists and is not an empty directory; choose another -o or remove it"
        )
    image = oci_image(wasm, variant=variant)
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        raise DeployError(f"the parent directory of {out_dir} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    try:
        (tmp / "oci-layout").write_bytes(_json_bytes({"imageLayoutVersion": "1.0.0"}))
        blobs = tmp / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for digest, data in {**image.blobs, image.digest: image.manifest}.items():
            (blobs / digest.split(":", 1)[1]).write_bytes(data)
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPES["index"],
            "manifests": [
                {
                    "mediaType": MEDIA_TYPES["manifest"],
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "annotations": {REF_NAME: tag},
                }
            ],
        }
        (tmp / "index.json").write_bytes(_json_bytes(index))
        os.chmod(tmp, 0o755)
        if out_dir.is_dir():
            out_dir.rmdir()  # empty (checked above)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return image
