"""An emulated star cluster on one Linux machine (root): network namespaces, veth links, a bridge.

  host i:  namespace dtsr-h<i>, interface dtsr-eth (address 10.77.0.<i+1>/24), no default route
  switch:  namespace dtsr-sw with bridge dtsr-br; host i's veth peer dtsr-p<i> is a bridge port
  links:   tc tbf on both ends of every veth, i.e. each direction of a host's link is shaped to
           the host's bandwidth (egress of dtsr-eth: upload; egress of dtsr-p<i>: download)

Every name starts with "dtsr-". Star.create() first removes the leftovers of a killed run
(namespaces, links, worker processes recorded in STATE_FILE), and Star.destroy() removes all it made;
run.py calls destroy() on every exit path (normal end, exception, SIGINT, SIGTERM, SIGHUP). tc netem is
not available on this machine kind, so the links have the veths' own latency (tens of microseconds),
which measure_latency() reports.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

PREFIX = "dtsr-"
SWITCH = PREFIX + "sw"
BRIDGE = PREFIX + "br"
HOST_IF = PREFIX + "eth"
STATE_FILE = "/run/dtsr-harness.json"
LOCK_FILE = "/run/dtsr-harness.lock"
SUBNET = "10.77.0"
BURST_S = float(os.environ.get("DTSR_BURST_S", "0.002"))  # tbf bucket, seconds of line rate


def sh(*args, check=True, ns=None, capture=False):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout if capture else r.returncode


def host_ns(i):
    return f"{PREFIX}h{i}"


def host_addr(i):
    return f"{SUBNET}.{i + 1}"


def available():
    """(True, "") when namespaces can be made here (root, iproute2, tc, veth, bridge), else (False, why)."""
    if os.geteuid() != 0:
        return False, "not root (network namespaces need CAP_NET_ADMIN)"
    probe = PREFIX + "probe"
    try:
        r = subprocess.run(["ip", "netns", "add", probe], stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        return False, "iproute2 (the ip command) is not installed"
    if r.returncode != 0:
        return False, "ip netns add failed: " + r.stderr.strip()
    try:
        for cmd in (["ip", "link", "add", "dtsr-pa", "type", "veth", "peer", "name", "dtsr-pb"],
                    ["ip", "link", "add", BRIDGE, "type", "bridge"],
                    ["tc", "qdisc", "add", "dev", "dtsr-pa", "root", "tbf", "rate", "1gbit", "burst", "256kb",
                     "latency", "100ms"]):
            r = subprocess.run(["ip", "netns", "exec", probe] + cmd, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                return False, f"{' '.join(cmd[:3])} failed in a namespace: {r.stderr.strip()}"
    except FileNotFoundError:
        return False, "tc (iproute2) is not installed"
    finally:
        subprocess.run(["ip", "netns", "delete", probe], stderr=subprocess.DEVNULL)
    return True, ""


def leftovers():
    """Names of dtsr- namespaces and root-namespace links that exist now."""
    ns = [l.split()[0] for l in sh("ip", "netns", "list", capture=True).splitlines() if l.startswith(PREFIX)]
    links = re.findall(r"^\d+: (" + PREFIX + r"[^:@]+)", sh("ip", "-o", "link", "show", capture=True), re.M)
    return ns, links


def _pid_alive(pid, marker):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def cleanup(verbose=False):
    """Removes everything a previous (possibly killed) run left: its worker processes, namespaces,
    links. Returns what it removed."""
    removed = []
    try:
        with open(STATE_FILE) as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = {}
    for pid in state.get("pids", []):
        if _pid_alive(pid, "bench/reality"):
            try:
                os.kill(pid, signal.SIGKILL)
                removed.append(f"process {pid}")
            except OSError:
                pass
    ns, links = leftovers()
    for n in ns:
        # Processes still inside (a worker of a killed run) would keep the namespace alive.
        pids = sh("ip", "netns", "pids", n, check=False, capture=True).split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
                removed.append(f"process {p}")
            except (OSError, ValueError):
                pass
        sh("ip", "netns", "delete", n, check=False)
        removed.append(f"namespace {n}")
    for l in links:
        sh("ip", "link", "delete", l, check=False)
        removed.append(f"link {l}")
    try:
        os.unlink(STATE_FILE)
    except OSError:
        pass
    if verbose and removed:
        print("removed leftovers of an earlier run: " + ", ".join(removed))
    return removed


def record_pids(pids):
    """Remembers the worker processes, so that the next run can kill them if this one is killed."""
    tmp = STATE_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"harness": os.getpid(), "pids": list(pids)}, f)
    os.replace(tmp, STATE_FILE)


def high_priority(rt=False):
    """preexec_fn for the measured processes (profiler, reference, ranks): a session of their own,
    hence a scheduler autogroup of their own (nice values only order processes within one
    autogroup), at nice -20, and with $DTSR_RT=1 (run.py's default) SCHED_FIFO priority 1. On a
    loaded 2-core machine (load 12-20 from compilers) a CFS rank blocked in recv waited up to
    ~12 ms to be woken: 64 KB all-reduces took 0.4-12 ms, and 8 emulated ranks of a small model
    measured 3-6x dtsim's prediction. SCHED_FIFO wakes them at once; the kernel's RT throttling
    keeps 5 % of each core for everything else. But a rank can spin in gloo (in its process-group
    teardown, which worker.py skips, and with 8 ranks at 10 Gbit/s mid-run), and a spinning FIFO
    rank never lets a same-priority rank on its core run: run.py asks for FIFO only while there are
    no more measured processes than cores (profiler, reference, 2 ranks)."""
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
    except OSError:
        pass
    if rt:  # run.py, unless --no-rt: FIFO while each process has a core, else round-robin
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO if rt == "fifo" else os.SCHED_RR, os.sched_param(1))
        except OSError:
            pass


def tbf_args(bits_per_s):
    """tc tbf settings for a rate: a bucket of BURST_S at line rate (at least 16 KB: ten packets)."""
    burst = max(16 * 1024, int(bits_per_s / 8 * BURST_S))
    return ["rate", f"{int(bits_per_s)}bit", "burst", str(burst), "latency", "100ms"]


class Star:
    """N hosts with full-duplex links of `bandwidth` bit/s to a non-blocking switch."""

    def __init__(self, n, bandwidth_bps):
        self.n = n
        self.bandwidth = bandwidth_bps
        self.made = False

    def create(self):
        cleanup(verbose=True)
        self.made = True  # from here on, destroy() must run
        sh("ip", "netns", "add", SWITCH)
        sh("ip", "link", "add", BRIDGE, "type", "bridge", ns=SWITCH)
        sh("ip", "link", "set", BRIDGE, "up", ns=SWITCH)
        sh("ip", "link", "set", "lo", "up", ns=SWITCH)
        for i in range(self.n):
            ns = host_ns(i)
            peer = f"{PREFIX}p{i}"
            sh("ip", "netns", "add", ns)
            # Both ends are born inside their namespaces: nothing appears in the root namespace.
            sh("ip", "link", "add", HOST_IF, "netns", ns, "type", "veth", "peer", "name", peer, "netns", SWITCH)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "addr", "add", f"{host_addr(i)}/24", "dev", HOST_IF, ns=ns)
            sh("ip", "link", "set", HOST_IF, "up", ns=ns)
            sh("ip", "link", "set", peer, "master", BRIDGE, ns=SWITCH)
            sh("ip", "link", "set", peer, "up", ns=SWITCH)
            sh("tc", "qdisc", "add", "dev", HOST_IF, "root", "tbf", *tbf_args(self.bandwidth), ns=ns)
            sh("tc", "qdisc", "add", "dev", peer, "root", "tbf", *tbf_args(self.bandwidth), ns=SWITCH)
        # Wait until every bridge port forwards (no STP: at once, but links come up asynchronously).
        deadline = time.time() + 10
        while time.time() < deadline:
            states = re.findall(r"state (\w+)", sh("bridge", "link", "show", ns=SWITCH, capture=True))
            if len(states) == self.n and all(s == "forwarding" for s in states):
                break
            time.sleep(0.05)
        return self

    def destroy(self):
        if not self.made:
            return
        self.made = False
        for i in range(self.n):
            for p in sh("ip", "netns", "pids", host_ns(i), check=False, capture=True).split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh("ip", "netns", "delete", host_ns(i), check=False)
        sh("ip", "netns", "delete", SWITCH, check=False)
        try:
            os.unlink(STATE_FILE)
        except OSError:
            pass

    def measure_latency(self, count=200):
        """One-way latency of a host-to-host route: half the median round trip of a 1-byte TCP
        message (TCP_NODELAY) from host 0 to an echo server on host 1, seconds."""
        if self.n < 2:
            return 0.0
        server = subprocess.Popen(["ip", "netns", "exec", host_ns(1), sys.executable, "-c", _ECHO_SERVER,
                                   host_addr(1)], stdout=subprocess.PIPE, text=True)
        try:
            server.stdout.readline()  # "ready"
            out = sh(sys.executable, "-c", _PING_CLIENT, host_addr(1), str(count), ns=host_ns(0), capture=True)
            return float(out.strip()) / 2
        finally:
            server.kill()
            server.wait()


_ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 29499)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    b = c.recv(1)
    if not b: break
    c.sendall(b)
"""

_PING_CLIENT = """
import socket, statistics, sys, time
c = socket.create_connection((sys.argv[1], 29499)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtt = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); c.sendall(b"x"); c.recv(1); rtt.append(time.perf_counter() - t)
print(statistics.median(rtt))
"""
