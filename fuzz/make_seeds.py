#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets (fuzz/run.sh calls this): OUT/config and OUT/idx.

config: every examples/*.json as is, every platforms/*.json inlined into a config, a small
synthetic config (the tests' shape), and a few with NUL-separated --set overrides.
idx:    small valid IDX datasets (synthetic and, when installed, the first Fashion-MNIST samples),
        raw and gzipped, in fuzz_idx's layout (flags, three u16 lengths, four files).
"""
import glob, gzip, json, os, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1]
os.makedirs(out + "/config", exist_ok=True)
os.makedirs(out + "/idx", exist_ok=True)
os.makedirs(out + "/cifar", exist_ok=True)

def put(kind, name, data):
    with open(f"{out}/{kind}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

small = {
    "name": "t", "seed": 7,
    "platform": {"network": {"model": "exact"}, "topology": {"kind": "star"},
                 "workers": {"count": 4, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "50us"}},
                 "servers": {"count": 1, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "50us"}},
                 "stragglers": [{"workers": [1], "slowdown": 2.5}]},
    "model": {"kind": "mlp", "hidden": [30]},
    "dataset": {"kind": "synthetic", "train": 2048, "test": 512, "features": 64, "classes": 10},
    "algorithm": {"name": "ssgd", "lr": 0.05, "momentum": 0.9},
    "training": {"batch_size": 16, "samples": 2048, "eval_every_samples": 0, "target_accuracy": [0.5],
                 "max_time_s": "10s"},
    "compute": {"mode": "real", "time": {"kind": "fixed", "seconds": 0.01}},
    "output": {"trace": False},
}
put("config", "small-synthetic.json", json.dumps(small, indent=1))
put("config", "small-sets.json", json.dumps(small) + "\0training.samples=64\0algorithm.name=asgd\0platform.workers.count=2")
for p in sorted(glob.glob(root + "/examples/*.json")):
    put("config", "example-" + os.path.basename(p), open(p, "rb").read())
for p in sorted(glob.glob(root + "/platforms/*.json")):
    doc = dict(small)
    doc["platform"] = json.load(open(p))
    put("config", "platform-" + os.path.basename(p), json.dumps(doc, indent=1))
    doc["platform"] = "../platforms/" + os.path.basename(p)
    put("config", "platform-path-" + os.path.basename(p), json.dumps(doc))

def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

def layout(files, flags):
    head = bytes([flags]) + b"".join(struct.pack(">H", len(f)) for f in files[:3])
    return head + b"".join(files)

def synthetic(n, h, w, classes, salt):
    img = bytes((i * 37 + salt) % 256 for i in range(n * h * w))
    lab = bytes((i + salt) % classes for i in range(n))
    return idx([n, h, w], img), idx([n], lab)

for flags in (0, 0x0F, 0x05):
    tri, trl = synthetic(6, 4, 3, 3, 1)
    tei, tel = synthetic(2, 4, 3, 3, 2)
    put("idx", f"synthetic-{flags:02x}", layout([tri, trl, tei, tel], flags))

fm = "/usr/share/datasets/fashion-mnist"
if os.path.exists(fm + "/train-images-idx3-ubyte.gz"):
    def head(name, n, per):
        with gzip.open(f"{fm}/{name}.gz", "rb") as f:
            hdr = f.read(16 if per > 1 else 8)
            return f.read(n * per)
    tri = idx([12, 28, 28], head("train-images-idx3-ubyte", 12, 784))
    trl = idx([12], head("train-labels-idx1-ubyte", 12, 1))
    tei = idx([4, 28, 28], head("t10k-images-idx3-ubyte", 4, 784))
    tel = idx([4], head("t10k-labels-idx1-ubyte", 4, 1))
    for flags in (0, 0x0F):
        put("idx", f"fashion-{flags:02x}", layout([tri, trl, tei, tel], flags))
# CIFAR-10: six files of 3073-byte records (label, 3x32x32 bytes); fuzz_cifar's layout.
def cifar(n, salt):
    return b"".join(bytes([(i + salt) % 10]) + bytes((j * 7 + i + salt) % 256 for j in range(3072)) for i in range(n))
files = [cifar(2, k) for k in range(5)] + [cifar(1, 9)]
for flags in (0xFC, 0xFF, 0xFD):
    put("cifar", f"cifar-{flags:02x}", bytes([flags]) + b"".join(struct.pack(">H", len(f)) for f in files[:5]) + b"".join(files))
print(f"make_seeds: {len(os.listdir(out + '/config'))} config seeds, {len(os.listdir(out + '/idx'))} idx seeds")
