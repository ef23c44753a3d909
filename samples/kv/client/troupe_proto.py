"""troupe.proto for Python, compiled with protoc at run time.

load_proto() returns the module protoc generates from troupe.proto
(troupe.wire.ClientRequest, ClientReply, ...), made once per process and
kept in a cache directory, so that nothing generated lives beside the
sources. It needs protoc (Debian: protobuf-compiler) and Google's protobuf
runtime of the same release (Debian: python3-protobuf; both 3.21 on
Debian 12, whose runtime calls itself 4.21).
"""

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

__all__ = ["load_proto"]

_pb2 = None
_pb2_lock = threading.Lock()


def _release(version):
    """The protobuf release of a version string: "3.21.12" (protoc) and
    "4.21.12" (the Python runtime) are both release 21."""
    parts = [int(x) for x in re.findall(r"\d+", version)[:2]]
    if not parts:
        return None
    if parts[0] in (3, 4, 5, 6) and len(parts) > 1:
        return parts[1]
    return parts[0]


def _check_versions(protoc):
    import google.protobuf

    try:
        out = subprocess.run([protoc, "--version"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError("cannot run %s: %s" % (protoc, e)) from e
    have, want = _release(out), _release(google.protobuf.__version__)
    if have != want:
        sys.stderr.write(
            "troupe_client: %s is protobuf release %s but the Python "
            "runtime (google.protobuf %s) is release %s; the generated code "
            "may not load\n" % (out.strip(), have,
                                google.protobuf.__version__, want))


def _find_proto(proto_dir):
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (proto_dir, os.environ.get("TROUPE_PROTO_DIR"),
              os.path.join(here, "..", "..", "..", "proto")):
        if d and os.path.isfile(os.path.join(d, "troupe.proto")):
            return os.path.abspath(d)
    raise FileNotFoundError(
        "troupe.proto not found: pass proto_dir or set TROUPE_PROTO_DIR to "
        "the proto/ directory of the troupe sources")


def _cache_root():
    d = os.environ.get("TROUPE_CLIENT_CACHE")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "troupe-client")


def _compile(proto_dir, protoc, out_dir):
    r = subprocess.run(
        [protoc, "--python_out=" + out_dir, "-I", proto_dir,
         os.path.join(proto_dir, "troupe.proto")],
        capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("protoc failed on troupe.proto: " + r.stderr)
    return os.path.join(out_dir, "troupe_pb2.py")


def _import(path):
    spec = importlib.util.spec_from_file_location("_troupe_client_pb2", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_proto(proto_dir=None, protoc="protoc"):
    """The module protoc generates from troupe.proto (ClientRequest,
    ClientReply), compiled once per process. It is kept in a cache
    directory ($TROUPE_CLIENT_CACHE, else $XDG_CACHE_HOME/troupe-client
    or ~/.cache/troupe-client), under a name made of the proto's and the
    runtime's versions; where that cannot be written, in a temporary
    directory removed once the module is loaded."""
    global _pb2
    with _pb2_lock:
        if _pb2 is not None:
            return _pb2
        import google.protobuf

        d = _find_proto(proto_dir)
        with open(os.path.join(d, "troupe.proto"), "rb") as f:
            tag = hashlib.sha256(
                f.read() + google.protobuf.__version__.encode()).hexdigest()
        final = os.path.join(_cache_root(), tag[:24])
        path = os.path.join(final, "troupe_pb2.py")
        if not os.path.isfile(path):
            _check_versions(protoc)
            try:
                os.makedirs(final, exist_ok=True)
                work = tempfile.mkdtemp(dir=final)
                try:
                    os.replace(_compile(d, protoc, work), path)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            except OSError:
                work = tempfile.mkdtemp(prefix="troupe-client-")
                try:
                    _pb2 = _import(_compile(d, protoc, work))
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                return _pb2
        _pb2 = _import(path)
        return _pb2
