#include "sim/checkpoint.hpp"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"

namespace dtsim::sim {

namespace {

constexpr char kMagic[8] = {'D', 'T', 'S', 'I', 'M', 'C', 'K', '1'};
static_assert(std::endian::native == std::endian::little, "checkpoint blobs are written as little-endian float32");

std::string hex(uint64_t h) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// NaN (timing-only rows) is written as null by nlohmann::json.
double num(const json& j) { return j.is_null() ? std::nan("") : j.get<double>(); }

struct BlobWriter {
  std::vector<const std::vector<float>*> parts;
  uint64_t next = 0;
  json ref(const std::vector<float>& v) {
    json r = {{"offset", next}, {"count", v.size()}};
    parts.push_back(&v);
    next += v.size();
    return r;
  }
};

}  // namespace

std::string config_hash(const std::string& text) { return hex(fnv1a(text)); }

std::string checkpoint_bytes(const Checkpoint& c) {
  BlobWriter blobs;
  json h;
  h["format"] = "dtsim-checkpoint";
  h["version"] = 1;
  h["config_hash"] = c.config_hash;
  h["algorithm"] = c.algorithm;
  h["step"] = c.step;
  h["counters"] = {{"samples_done", c.samples_done}, {"claimed", c.claimed},       {"gradients", c.gradients},
                   {"updates", c.updates},           {"messages", c.messages},     {"shard_commits", c.shard_commits},
                   {"bytes_on_wire", c.bytes_on_wire}, {"next_eval", c.next_eval}, {"last_eval_version", c.last_eval_version},
                   {"next_checkpoint", c.next_checkpoint}};
  json rows = json::array();
  for (const auto& r : c.metrics)
    rows.push_back({r.sim_time_s, r.wall_time_s, r.samples, r.epoch, r.train_loss, r.test_loss, r.test_accuracy,
                    r.exposed_comm_s_per_step});
  h["metrics"] = rows;
  json tta = json::array();
  for (const auto& t : c.time_to_accuracy) tta.push_back(t ? json(*t) : json(nullptr));
  h["time_to_accuracy"] = tta;
  if (c.warnings) h["warnings"] = *c.warnings;
  h["global"] = blobs.ref(c.global);
  auto nodes = [&blobs](const std::vector<NodeCheckpoint>& ns) {
    json a = json::array();
    for (const auto& n : ns) {
      json j = {{"cut_time_s", n.cut_time_s}, {"k", n.k},         {"pos", n.pos},
                {"batch", n.batch},           {"ar_seq", n.ar_seq}, {"gradients", n.gradients},
                {"samples", n.samples},       {"compute_s", n.compute_s}, {"comm_wait_s", n.comm_wait_s},
                {"sent_bytes", n.sent_bytes}, {"sent_messages", n.sent_messages}, {"work_s", n.work_s}};
      j["ints"] = json::object();
      for (const auto& [k, v] : n.ints) j["ints"][k] = v;
      j["blobs"] = json::object();
      for (const auto& [k, v] : n.blobs) j["blobs"][k] = blobs.ref(v);
      a.push_back(j);
    }
    return a;
  };
  h["workers"] = nodes(c.workers);
  h["servers"] = nodes(c.servers);
  h["blob_floats"] = blobs.next;
  uint64_t bh = kFnv1aOffsetBasis;
  for (const auto* p : blobs.parts) bh = fnv1a_bytes(p->data(), p->size() * sizeof(float), bh);
  h["blob_hash"] = hex(bh);

  const std::string header = h.dump();
  std::string out(kMagic, sizeof kMagic);
  const uint64_t len = header.size();
  out.append(reinterpret_cast<const char*>(&len), sizeof len);
  out += header;
  out.reserve(out.size() + blobs.next * sizeof(float));
  for (const auto* p : blobs.parts) out.append(reinterpret_cast<const char*>(p->data()), p->size() * sizeof(float));
  return out;
}

Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path) {
  auto bad = [&path](const std::string& why) -> InputError {
    return InputError(path, "", "not a usable dtsim checkpoint: " + why);
  };
  if (bytes.size() < sizeof kMagic + 8 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw bad("missing the DTSIMCK1 magic (not a checkpoint, or truncated)");
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + sizeof kMagic, sizeof len);
  const size_t hdr_at = sizeof kMagic + sizeof len;
  if (len > bytes.size() - hdr_at) throw bad("truncated header");
  json h;
  try {
    h = json::parse(bytes.substr(hdr_at, len));
  } catch (const std::exception& e) {
    throw bad("corrupt header (" + std::string(e.what()) + ")");
  }
  Checkpoint c;
  try {
    if (h.at("format") != "dtsim-checkpoint" || h.at("version") != 1) throw bad("unknown format or version");
    const size_t blob_at = hdr_at + len;
    const uint64_t floats = h.at("blob_floats").get<uint64_t>();
    if (bytes.size() - blob_at != floats * sizeof(float))
      throw bad("truncated: " + std::to_string(bytes.size() - blob_at) + " bytes of data, the header announces " +
                std::to_string(floats * sizeof(float)));
    const float* base = reinterpret_cast<const float*>(bytes.data() + blob_at);  // NOLINT
    uint64_t bh = fnv1a_bytes(bytes.data() + blob_at, bytes.size() - blob_at);
    if (hex(bh) != h.at("blob_hash").get<std::string>()) throw bad("corrupt data (checksum mismatch)");
    auto blob = [&](const json& r) {
      const uint64_t off = r.at("offset").get<uint64_t>(), n = r.at("count").get<uint64_t>();
      if (off > floats || n > floats - off) throw bad("a blob lies outside the data");
      std::vector<float> v(n);
      if (n) std::memcpy(v.data(), base + off, n * sizeof(float));
      return v;
    };
    c.config_hash = h.at("config_hash").get<std::string>();
    c.algorithm = h.at("algorithm").get<std::string>();
    c.step = h.at("step").get<int64_t>();
    const json& k = h.at("counters");
    c.samples_done = k.at("samples_done").get<uint64_t>();
    c.claimed = k.at("claimed").get<uint64_t>();
    c.gradients = k.at("gradients").get<uint64_t>();
    c.updates = k.at("updates").get<uint64_t>();
    c.messages = k.at("messages").get<uint64_t>();
    c.shard_commits = k.at("shard_commits").get<uint64_t>();
    c.bytes_on_wire = k.at("bytes_on_wire").get<double>();
    c.next_eval = k.at("next_eval").get<uint64_t>();
    c.last_eval_version = k.at("last_eval_version").get<uint64_t>();
    c.next_checkpoint = k.at("next_checkpoint").get<uint64_t>();
    for (const auto& r : h.at("metrics"))
      c.metrics.push_back({num(r.at(0)), num(r.at(1)), r.at(2).get<uint64_t>(), num(r.at(3)), num(r.at(4)),
                           num(r.at(5)), num(r.at(6)), r.size() > 7 ? num(r.at(7)) : 0.0});
    for (const auto& t : h.at("time_to_accuracy"))
      c.time_to_accuracy.push_back(t.is_null() ? std::nullopt : std::optional<double>(t.get<double>()));
    if (h.contains("warnings")) c.warnings = h.at("warnings").get<std::vector<std::string>>();
    c.global = blob(h.at("global"));
    auto nodes = [&](const json& a, std::vector<NodeCheckpoint>& out) {
      for (const auto& j : a) {
        NodeCheckpoint n;
        n.cut_time_s = j.at("cut_time_s").get<double>();
        n.k = j.at("k").get<int64_t>();
        n.pos = j.at("pos").get<uint64_t>();
        n.batch = j.at("batch").get<int64_t>();
        n.ar_seq = j.at("ar_seq").get<uint64_t>();
        n.gradients = j.at("gradients").get<uint64_t>();
        n.samples = j.at("samples").get<uint64_t>();
        n.compute_s = j.at("compute_s").get<double>();
        n.comm_wait_s = j.at("comm_wait_s").get<double>();
        n.sent_bytes = j.at("sent_bytes").get<double>();
        n.sent_messages = j.at("sent_messages").get<uint64_t>();
        n.work_s = j.value("work_s", 0.0);  // absent in checkpoints of dtsim before layer-wise timing
        for (const auto& [key, v] : j.at("ints").items()) n.ints[key] = v.get<int64_t>();
        for (const auto& [key, r] : j.at("blobs").items()) n.blobs[key] = blob(r);
        out.push_back(std::move(n));
      }
    };
    nodes(h.at("workers"), c.workers);
    nodes(h.at("servers"), c.servers);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw bad("corrupt header (" + std::string(e.what()) + ")");
  }
  return c;
}

Checkpoint read_checkpoint(const std::string& path) {
  if (!io::file_exists(path)) throw InputError(path, "", "no checkpoint here (run with training.checkpoint_every_samples)");
  return parse_checkpoint(io::read_file(path), path);
}

}  // namespace dtsim::sim
