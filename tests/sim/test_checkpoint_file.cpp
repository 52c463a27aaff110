// The checkpoint file (sim/checkpoint.hpp, docs/robustness.md "Checkpoint and resume"): what is
// written is read back exactly (NaN metrics, missing time-to-accuracy, blobs), and damaged files
// are refused with an InputError naming the file. No simulation runs here.
#include <cmath>
#include <limits>
#include <string>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "sim/checkpoint.hpp"

namespace dtsim::test {
namespace test_checkpoint_file_cpp {  // one namespace per test file: the test targets are unity builds
namespace {

sim::Checkpoint sample_checkpoint() {
  sim::Checkpoint c;
  c.config_hash = sim::config_hash("{\"seed\": 1}\n");
  c.algorithm = "ssgd";
  c.step = 17;
  c.samples_done = 1632, c.claimed = 1632, c.gradients = 204, c.updates = 17, c.messages = 102, c.shard_commits = 34;
  c.bytes_on_wire = 12345.5;
  c.next_eval = 1700, c.last_eval_version = std::numeric_limits<uint64_t>::max(), c.next_checkpoint = 2000;
  c.metrics.push_back({0.0, 0.01, 0, 0.0, std::nan(""), std::nan(""), std::nan("")});
  c.metrics.push_back({0.123456789012345, 0.5, 960, 1.875, 0.3, 0.4, 0.875});
  c.time_to_accuracy = {std::nullopt, 0.0625};
  c.global = {1.5f, -2.25f, 3.0e-38f, std::numeric_limits<float>::denorm_min()};
  sim::NodeCheckpoint w;
  w.cut_time_s = 0.1 + 0.2, w.k = 17, w.pos = 136, w.batch = 8, w.ar_seq = 3, w.gradients = 17, w.samples = 136;
  w.compute_s = 0.01, w.comm_wait_s = 0.02, w.sent_bytes = 64, w.sent_messages = 34;
  w.blobs["sgd.v"] = {0.5f, 0.25f};
  w.blobs["empty"] = {};
  w.ints["sgd.first"] = 0;
  w.ints["acked.0"] = -3;
  c.workers = {w, w};
  c.workers[1].k = 18;
  c.servers = {sim::NodeCheckpoint{}};
  return c;
}

}  // namespace

TEST_CASE("checkpoint file: written and read back exactly, NaN metrics and missing targets included") {
  const sim::Checkpoint c = sample_checkpoint();
  const std::string bytes = sim::checkpoint_bytes(c);
  CHECK(bytes.rfind("DTSIMCK1", 0) == 0);
  const sim::Checkpoint r = sim::parse_checkpoint(bytes, "x/checkpoint.dtck");
  CHECK(r.config_hash == c.config_hash);
  CHECK(r.algorithm == "ssgd");
  CHECK(r.step == 17);
  CHECK(r.samples_done == 1632);
  CHECK(r.bytes_on_wire == 12345.5);
  CHECK(r.last_eval_version == std::numeric_limits<uint64_t>::max());
  CHECK(r.next_checkpoint == 2000);
  REQUIRE(r.metrics.size() == 2);
  CHECK(std::isnan(r.metrics[0].test_accuracy));
  CHECK(r.metrics[1].sim_time_s == c.metrics[1].sim_time_s);  // doubles round-trip exactly
  CHECK(r.metrics[1].samples == 960);
  REQUIRE(r.time_to_accuracy.size() == 2);
  CHECK_FALSE(r.time_to_accuracy[0].has_value());
  CHECK(*r.time_to_accuracy[1] == 0.0625);
  CHECK(r.global == c.global);  // bitwise (denormals too)
  REQUIRE(r.workers.size() == 2);
  CHECK(r.workers[0].cut_time_s == c.workers[0].cut_time_s);
  CHECK(r.workers[1].k == 18);
  CHECK(r.workers[0].blobs.at("sgd.v") == std::vector<float>{0.5f, 0.25f});
  CHECK(r.workers[0].blobs.at("empty").empty());
  CHECK(r.workers[0].ints.at("acked.0") == -3);
  CHECK(r.servers.size() == 1);
  CHECK(sim::checkpoint_bytes(r) == bytes);  // a fixed point
}

TEST_CASE("checkpoint file: truncated, corrupted or foreign files are refused naming the file") {
  const std::string bytes = sim::checkpoint_bytes(sample_checkpoint());
  auto refused = [](const std::string& b, const std::string& why) {
    try {
      sim::parse_checkpoint(b, "run/checkpoint.dtck");
      FAIL("accepted a damaged checkpoint, expected: " << why);
    } catch (const InputError& e) {
      CAPTURE(e.what());
      CHECK(e.file() == "run/checkpoint.dtck");
      CHECK(std::string(e.what()).find(why) != std::string::npos);
    }
  };
  refused(bytes.substr(0, bytes.size() - 1), "truncated");
  refused(bytes.substr(0, 20), "truncated header");
  refused(bytes.substr(0, 4), "magic");
  refused("PK\x03\x04 not a checkpoint at all", "magic");
  std::string flipped = bytes;
  flipped[flipped.size() - 2] ^= 0x01;
  refused(flipped, "checksum mismatch");
  std::string header = bytes;
  header[20] = '#';  // inside the JSON header
  refused(header, "corrupt header");
  refused(bytes + "extra", "truncated");  // any size mismatch with the header
}

TEST_CASE("checkpoint file: the config hash is FNV-1a of the exact text") {
  CHECK(sim::config_hash("") == "cbf29ce484222325");  // the FNV-1a 64 offset basis
  CHECK(sim::config_hash("a") == "af63dc4c8601ec8c");  // published FNV-1a 64 test vector
  CHECK(sim::config_hash("{\"seed\": 1}\n") != sim::config_hash("{\"seed\": 1} \n"));
}

}  // namespace test_checkpoint_file_cpp
}  // namespace dtsim::test
