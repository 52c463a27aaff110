"""Shared by the tests in tests/reality/: skip rules (exit 77) and paths."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTSIM = os.environ.get("DTSIM", os.path.join(ROOT, "build", "dtsim"))


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def need_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        skip("python3-torch is not installed (tools/install-deps.sh --with-torch)")


def need_netns():
    sys.path.insert(0, os.path.join(ROOT, "bench", "reality"))
    import netns
    ok, why = netns.available()
    if not ok:
        skip(f"cannot make network namespaces here: {why}")
    return netns


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
