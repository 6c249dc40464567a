"""The user's workflow around a module: new, envoy-config, istio, oci.

``proxywasm new`` must give a folder whose tests pass at once; the deploy
commands must print what Envoy, Istio and an OCI registry accept. Tests that
compile a module or start Envoy are marked ``slow``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from proxywasm_compiler import cli, deploy, scaffold
from proxywasm_compiler.envoy import find_envoy
from proxywasm_compiler.zig import compile_c_filter

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "proxywasm_compiler.cli"]

#: A tiny byte string that starts like a wasm module: enough for istio / oci,
#: which only hash and package the bytes.
FAKE_WASM = b"\0asm\x01\0\0\0" + bytes(range(256)) * 4


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_wasm(tmp_path: Path) -> Path:
    path = tmp_path / "my_filter.wasm"
    path.write_bytes(FAKE_WASM)
    return path


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


# ------------------------------------------------------------------------- new


def test_new_creates_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "new", str(tmp_path / "my_filter"))
    assert code == 0, err
    folder = tmp_path / "my_filter"
    for name in ("filter.py", "test_filter.py", "envoy.yaml", "README.md", "pytest.ini"):
        assert (folder / name).is_file(), name
    assert "pytest" in out and "proxywasm build filter.py -o my_filter.wasm" in out
    filter_py = (folder / "filter.py").read_text()
    assert (
        "class Root(RootContext)" in filter_py and "proxywasm.set_root_context(Root)" in filter_py
    )
    assert "json.loads" in filter_py and 'header = "x-my-filter"' in filter_py
    envoy_yaml = (folder / "envoy.yaml").read_text()
    for needle in (
        "filename: my_filter.wasm",
        "runtime: envoy.wasm.runtime.v8",
        "port_value: 10000",
        "port_value: 8080",
        "port_value: 9901",
    ):
        assert needle in envoy_yaml
    test_py = (folder / "test_filter.py").read_text()
    assert "proxywasm_filter_host" in test_py and "PROXYWASM_FILTER" in test_py
    compile(filter_py, "filter.py", "exec")
    compile(test_py, "test_filter.py", "exec")
    # No temporary folder is left next to it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_filter"]


def test_new_tests_pass_at_once(tmp_path: Path) -> None:
    subprocess.run(
        [*CLI, "new", "quick"], cwd=tmp_path, check=True, capture_output=True, timeout=60
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path / "quick",
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=_subprocess_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout and "3 deselected" in proc.stdout


def test_new_into_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "new", str(tmp_path / "empty"))
    assert code == 0, err
    assert (tmp_path / "empty" / "filter.py").is_file()


def test_new_refuses_a_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "new", str(folder))
    assert code == 1
    assert "already exists and is not empty" in err and err.startswith("proxywasm: error:")
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_new_refuses_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "new", str(tmp_path / "afile"))
    assert code == 1 and "is not a directory" in err


@pytest.mark.parametrize("name", ["9lives", "my-filter", "has space", "class", "a" * 64, "", "é"])
def test_new_refuses_bad_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, _, err = run_cli(capsys, "new", str(tmp_path / name) if name else "")
    assert code == 1
    assert "invalid name" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["f", "my_filter", "Filter2", "x_"])
def test_valid_names(name: str) -> None:
    assert scaffold.validate_name(name) == name


def test_new_needs_an_existing_parent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "new", str(tmp_path / "missing" / "f"))
    assert code == 1 and "parent directory" in err


@pytest.mark.slow
def test_new_compiled_tests_and_envoy_yaml(tmp_path: Path) -> None:
    """The full loop: scaffold, pytest (native + compiled), build, envoy --mode validate."""
    subprocess.run([*CLI, "new", "full"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    folder = tmp_path / "full"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=_subprocess_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 passed" in proc.stdout
    subprocess.run(
        [*CLI, "build", "filter.py", "-o", "full.wasm"],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=900,
    )
    check = subprocess.run(
        [
            str(find_envoy()),
            "--mode",
            "validate",
            "-c",
            "envoy.yaml",
            "--base-id",
            str(os.getpid() % 50000 + 7),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK" in check.stdout + check.stderr


# ------------------------------------------------------------------ YAML emitter


def test_dump_yaml_round_trips() -> None:
    import yaml  # PyYAML, a dev dependency

    doc: dict[str, Any] = {
        "@type": "type.googleapis.com/x",
        "plain": "ingress_http",
        "quoted": [
            "true",
            "no",
            "on",
            "null",
            "~",
            "1s",
            "127.0.0.1",
            "10",
            "",
            "a: b",
            "#x",
            "- y",
            "é ü",
            "x\ny",
        ],
        "numbers": [0, -1, 10000, 1.5],
        "flags": [True, False, None],
        "empty": {"d": {}, "l": []},
        "nested": [{"a": 1, "b": [{"c": "d"}, [1, 2]]}, [[]], "s"],
        "n": "y",
    }
    assert yaml.safe_load(deploy.dump_yaml(doc)) == doc


def test_dump_yaml_is_block_style() -> None:
    text = deploy.dump_yaml({"a": [{"b": 1, "c": 2}], "d": "e"})
    assert text == "a:\n  - b: 1\n    c: 2\nd: e\n"


# ---------------------------------------------------------------- envoy-config


def test_envoy_config_yaml(fake_wasm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml  # PyYAML, a dev dependency

    code, out, err = run_cli(
        capsys,
        "envoy-config",
        str(fake_wasm),
        "--config",
        '{"value": "hi"}',
        "--root-id",
        "r1",
        "--vm-id",
        "v1",
        "--listen",
        "0.0.0.0:18000",
        "--upstream",
        "10.0.0.2:80",
        "--fail-open",
    )
    assert code == 0, err
    doc = yaml.safe_load(out)
    listener = doc["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 18000}
    hcm = listener["filter_chains"][0]["filters"][-1]["typed_config"]
    wasm = hcm["http_filters"][0]["typed_config"]["config"]
    assert (
        wasm["root_id"] == "r1"
        and wasm["vm_config"]["vm_id"] == "v1"
        and wasm["failure_policy"] == "FAIL_OPEN"
    )
    assert wasm["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    assert wasm["vm_config"]["code"]["local"]["filename"] == str(fake_wasm.resolve())
    assert wasm["configuration"]["value"] == '{"value": "hi"}'
    cluster = doc["static_resources"]["clusters"][0]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "10.0.0.2", "port_value": 80}
    assert doc["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}


def test_envoy_config_json_matches_yaml(
    fake_wasm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml  # PyYAML, a dev dependency

    _, as_yaml, _ = run_cli(capsys, "envoy-config", str(fake_wasm))
    _, as_json, _ = run_cli(capsys, "envoy-config", str(fake_wasm), "--format", "json")
    assert json.loads(as_json) == yaml.safe_load(as_yaml)
    assert (
        json.loads(as_json)["static_resources"]["listeners"][0]["address"]["socket_address"][
            "port_value"
        ]
        == 10000
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "nope"], "--listen must be HOST:PORT"),
        (["--upstream", "h:99999"], "--upstream must be HOST:PORT"),
    ],
)
def test_envoy_config_errors(
    fake_wasm: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "envoy-config", str(fake_wasm), *argv)
    assert code == 1 and message in err and out == ""


def test_envoy_config_needs_a_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "envoy-config", str(tmp_path / "none.wasm"))
    assert code == 1 and "no such module" in err
    (tmp_path / "filter.py").write_text("pass\n")
    code, _, err = run_cli(capsys, "envoy-config", str(tmp_path / "filter.py"))
    assert code == 1 and "not a WebAssembly module" in err


@pytest.fixture(scope="module")
def c_filter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real proxy-wasm module (tests/data/c_filter.c), compiled with zig in seconds."""
    out = tmp_path_factory.mktemp("cfilter") / "c_filter.wasm"
    compile_c_filter(REPO / "tests" / "data" / "c_filter.c", out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_envoy_validates_the_printed_config(
    c_filter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, err = run_cli(
        capsys,
        "envoy-config",
        str(c_filter),
        "--config",
        '{"a": 1}',
        "--root-id",
        "",
        "--format",
        fmt,
    )
    assert code == 0, err
    config = tmp_path / f"bootstrap.{fmt}"
    config.write_text(out)
    proc = subprocess.run(
        [
            str(find_envoy()),
            "--mode",
            "validate",
            "-c",
            str(config),
            "--base-id",
            str(os.getpid() % 50000 + 3),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"configuration '{config}' OK" in proc.stdout + proc.stderr


# ----------------------------------------------------------------------- istio


def test_istio_wasm_plugin(fake_wasm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml  # PyYAML, a dev dependency

    code, out, err = run_cli(
        capsys,
        "istio",
        str(fake_wasm),
        "--image",
        "registry.example.com/filters/my_filter:v1",
        "--namespace",
        "istio-system",
        "--config",
        '{"value": "hi", "list": [1, "two"], "on": true}',
        "--phase",
        "AUTHZ",
        "--priority",
        "10",
        "--selector",
        "app=web",
        "--selector",
        "istio=ingressgateway",
        "--root-id",
        "my_root",
    )
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["apiVersion"] == "extensions.istio.io/v1alpha1" and doc["kind"] == "WasmPlugin"
    assert doc["metadata"] == {"name": "my-filter", "namespace": "istio-system"}
    spec = doc["spec"]
    assert spec["url"] == "oci://registry.example.com/filters/my_filter:v1"
    assert spec["selector"] == {"matchLabels": {"app": "web", "istio": "ingressgateway"}}
    assert spec["pluginConfig"] == {"value": "hi", "list": [1, "two"], "on": True}
    assert spec["phase"] == "AUTHZ" and spec["priority"] == 10
    assert spec["failStrategy"] == "FAIL_CLOSE"
    assert spec["pluginName"] == "my_root"
    assert spec["imagePullPolicy"] == "IfNotPresent"
    # For oci:// Istio compares sha256 with the image's manifest digest: the
    # one `proxywasm oci` writes for this module.
    assert spec["sha256"] == deploy.oci_image(fake_wasm).digest.removeprefix("sha256:")


def test_istio_sha256_matches_the_written_layout(
    fake_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for variant in ("oci", "compat"):
        layout = tmp_path / f"layout-{variant}"
        code, digest, err = run_cli(
            capsys, "oci", str(fake_wasm), "-o", str(layout), "--variant", variant
        )
        assert code == 0, err
        for source in (str(fake_wasm), str(layout)):
            code, out, err = run_cli(
                capsys,
                "istio",
                source,
                "--image",
                "r.example/f:latest",
                "--variant",
                variant,
                "--format",
                "json",
            )
            assert code == 0, err
            assert json.loads(out)["spec"]["sha256"] == digest.strip().removeprefix("sha256:")


def test_istio_url_uses_the_module_sha256(
    fake_wasm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys,
        "istio",
        str(fake_wasm),
        "--url",
        "https://example.com/f.wasm",
        "--fail-open",
        "--format",
        "json",
        "--name",
        "custom",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["spec"]["sha256"] == hashlib.sha256(FAKE_WASM).hexdigest()
    assert doc["spec"]["failStrategy"] == "FAIL_OPEN"
    assert doc["metadata"] == {"name": "custom"}
    assert "imagePullPolicy" not in doc["spec"] and "pluginConfig" not in doc["spec"]
    assert "selector" not in doc["spec"]


def test_istio_pinned_digest_wins(fake_wasm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pinned = "ab" * 32
    code, out, err = run_cli(
        capsys,
        "istio",
        str(fake_wasm),
        "--image",
        f"r.example/f@sha256:{pinned}",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out)["spec"]["sha256"] == pinned
    assert "warning" in err and pinned in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "not json"], "--config is not JSON"),
        (["--config", "[1]"], "must be a JSON object"),
        (["--selector", "app"], "--selector must be KEY=VALUE"),
        (["--name", "Bad_Name"], "is not a Kubernetes resource name"),
    ],
)
def test_istio_errors(
    fake_wasm: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "istio", str(fake_wasm), "--image", "r/f:1", *argv)
    assert code == 1 and message in err and out == ""


def test_istio_needs_image_or_url(fake_wasm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["istio", str(fake_wasm)])
    assert exc.value.code == 2
    assert "one of the arguments --image --url is required" in capsys.readouterr().err


# ------------------------------------------------------------------------- oci


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":")
    assert algorithm == "sha256"
    data = (layout / "blobs" / "sha256" / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest, f"blob {digest} does not match its digest"
    return data


def _check_descriptor(layout: Path, desc: dict[str, Any]) -> bytes:
    data = _blob(layout, desc["digest"])
    assert desc["size"] == len(data), f"size of {desc['digest']}"
    return data


def _read_layout(layout: Path, tag: str) -> tuple[dict[str, Any], dict[str, Any], list[bytes], str]:
    """Check a layout against the OCI image-layout spec; returns (manifest, config, layer blobs, digest)."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [entry] = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": tag}
    manifest = json.loads(_check_descriptor(layout, entry))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config = json.loads(_check_descriptor(layout, manifest["config"]))
    layers = [_check_descriptor(layout, layer) for layer in manifest["layers"]]
    # Every blob is referenced (no stray files).
    referenced = {
        entry["digest"],
        manifest["config"]["digest"],
        *(d["digest"] for d in manifest["layers"]),
    }
    on_disk = {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert on_disk == referenced
    return manifest, config, layers, entry["digest"]


def _istio_extract(manifest: dict[str, Any], layers: list[bytes]) -> bytes:
    """What Istio's image fetcher (pkg/wasm/imagefetcher.go) takes from an OCI manifest."""
    types = [layer["mediaType"] for layer in manifest["layers"]]
    if len(types) == 1 and types[0] == "application/vnd.oci.image.layer.v1.tar+gzip":  # compat
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layers[0]))) as tar:
            for member in tar:
                if os.path.basename(member.name) == "plugin.wasm":
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    return extracted.read()
        raise AssertionError("plugin.wasm not found in the archive")
    assert len(types) == 2, "the oci variant must have exactly 2 layers"
    return layers[types.index("application/vnd.module.wasm.content.layer.v1+wasm")]


def test_oci_layout(fake_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "image"
    code, out, err = run_cli(capsys, "oci", str(fake_wasm), "-o", str(layout), "--tag", "v1.2")
    assert code == 0, err
    manifest, config, layers, digest = _read_layout(layout, "v1.2")
    assert out.strip() == digest
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    assert config["type"] == "envoy_proxy" and config["abiVersions"] == ["v0.2.1"]
    config_layer, wasm_layer = manifest["layers"]
    assert config_layer["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    assert config_layer["digest"] == manifest["config"]["digest"]
    assert config_layer["annotations"] == {"org.opencontainers.image.title": "runtime-config.json"}
    assert wasm_layer["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm"
    assert wasm_layer["annotations"] == {"org.opencontainers.image.title": "my_filter.wasm"}
    assert wasm_layer["digest"] == "sha256:" + hashlib.sha256(FAKE_WASM).hexdigest()
    assert layers[1] == FAKE_WASM
    assert _istio_extract(manifest, layers) == FAKE_WASM
    assert "oras cp" in err and "crane push" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image", "my_filter.wasm"]


def test_oci_compat_variant(
    fake_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "compat"
    code, out, err = run_cli(
        capsys, "oci", str(fake_wasm), "-o", str(layout), "--variant", "compat"
    )
    assert code == 0, err
    manifest, config, layers, digest = _read_layout(layout, "latest")
    assert out.strip() == digest
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["annotations"] == {"module.wasm.image/variant": "compat"}
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert _istio_extract(manifest, layers) == FAKE_WASM
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layers[0])).hexdigest()
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}


def test_oci_is_reproducible(fake_wasm: Path, tmp_path: Path) -> None:
    for variant in deploy.VARIANTS:
        a = deploy.write_oci_layout(fake_wasm, tmp_path / f"a-{variant}", variant=variant)
        b = deploy.write_oci_layout(fake_wasm, tmp_path / f"b-{variant}", variant=variant)
        assert a.digest == b.digest == deploy.oci_image(fake_wasm, variant=variant).digest


def test_oci_refuses_a_non_empty_dir(
    fake_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "taken"
    out_dir.mkdir()
    (out_dir / "x").write_text("keep")
    code, out, err = run_cli(capsys, "oci", str(fake_wasm), "-o", str(out_dir))
    assert code == 1 and "not an empty directory" in err and out == ""
    assert [p.name for p in out_dir.iterdir()] == ["x"]
    # An empty directory is fine.
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "oci", str(fake_wasm), "-o", str(tmp_path / "empty"))
    assert code == 0, err
    assert (tmp_path / "empty" / "index.json").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--tag", "bad tag"], "not a valid OCI tag"), (["--tag=.x"], "not a valid OCI tag")],
)
def test_oci_errors(
    fake_wasm: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, _, err = run_cli(capsys, "oci", str(fake_wasm), "-o", str(tmp_path / "o"), *argv)
    assert code == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_oci_failure_leaves_nothing(
    fake_wasm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError, match="disk full"):
        deploy.write_oci_layout(fake_wasm, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_filter.wasm"]


@pytest.mark.slow
def test_oci_of_a_real_module(
    c_filter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "oci", str(c_filter), "-o", str(tmp_path / "img"), "--tag", "v1"
    )
    assert code == 0, err
    manifest, _, layers, digest = _read_layout(tmp_path / "img", "v1")
    assert _istio_extract(manifest, layers) == c_filter.read_bytes()
    code, out, _ = run_cli(
        capsys, "istio", str(c_filter), "--image", "r.example/c:v1", "--format", "json"
    )
    assert json.loads(out)["spec"]["sha256"] == digest.removeprefix("sha256:")


@pytest.mark.parametrize(
    ("policy", "envoy_name", "istio_name"),
    [
        ("closed", "FAIL_CLOSED", "FAIL_CLOSE"),
        ("open", "FAIL_OPEN", "FAIL_OPEN"),
        ("reload", "FAIL_RELOAD", "FAIL_RELOAD"),
    ],
)
def test_failure_policy_reaches_envoy_and_istio(
    fake_wasm: Path,
    capsys: pytest.CaptureFixture[str],
    policy: str,
    envoy_name: str,
    istio_name: str,
) -> None:
    code, out, err = run_cli(
        capsys, "envoy-config", str(fake_wasm), "--failure-policy", policy, "--format", "json"
    )
    assert code == 0, err
    hcm = json.loads(out)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1][
        "typed_config"
    ]
    assert hcm["http_filters"][0]["typed_config"]["config"]["failure_policy"] == envoy_name
    code, out, err = run_cli(
        capsys,
        "istio",
        str(fake_wasm),
        "--url",
        "file:///f.wasm",
        "--failure-policy",
        policy,
        "--format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["spec"]["failStrategy"] == istio_name


def test_unknown_failure_policy_is_refused(
    fake_wasm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "envoy-config", str(fake_wasm), "--failure-policy", "retry")
    assert info.value.code == 2
    assert "invalid choice: 'retry'" in capsys.readouterr().err
