// links.csv and summary.json's busiest_link (issue 5): bytes carried, busy time and utilisation of
// every link, checked against what the algorithm must put on each link.
#include <map>
#include <sstream>

#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_platform_links_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

struct Row {
  double bandwidth, latency, bytes, busy, util;
  long transfers;
};

std::map<std::string, Row> parse_links(const std::string& csv) {
  std::map<std::string, Row> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "link,bandwidth_Bps,latency_s,bytes,transfers,busy_s,utilisation");
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name, f;
    std::getline(ls, name, ',');
    std::vector<double> v;
    while (std::getline(ls, f, ',')) v.push_back(std::stod(f));
    REQUIRE(v.size() == 6);
    out[name] = {v[0], v[1], v[2], v[4], v[5], static_cast<long>(v[3])};
  }
  return out;
}

constexpr double kP = 2260, kS = 4 * kP, kB = 1e9 / 8, kLat = 50e-6;

}  // namespace

TEST_CASE("links.csv: SSGD on a star charges S per step to each worker NIC and N S to the server NIC") {
  const int N = 4, steps = 5;
  json cfg = small_config(N, 1);
  cfg["compute"]["mode"] = "timing-only";
  cfg["training"]["samples"] = steps * N * 16;
  const auto r = run_forked(load(cfg));
  REQUIRE(r.exit_code == 0);
  const auto links = parse_links(r.links);
  CHECK(links.size() == 5 * 3);  // 4 workers + 1 server: NIC up, NIC down, loopback
  for (int i = 0; i < N; ++i) {
    const std::string w = "worker-" + std::to_string(i);
    CHECK(links.at(w + "-nic_UP").bytes == dtsim_test::Rel(steps * kS));
    CHECK(links.at(w + "-nic_DOWN").bytes == dtsim_test::Rel(steps * kS));
    CHECK(links.at(w + "-nic_UP").transfers == steps);
    CHECK(links.at(w + "-loopback").bytes == 0);
  }
  const auto& down = links.at("server-0-nic_DOWN");
  CHECK(down.bytes == dtsim_test::Rel(steps * N * kS));
  CHECK(down.bandwidth == kB);
  CHECK(down.latency == dtsim_test::Rel(kLat).epsilon(1e-12));
  // Busy: one push phase per step, all N transfers in flight together: lat + N S / B each.
  CHECK(down.busy == dtsim_test::Rel(steps * (2 * kLat + N * kS / kB)).epsilon(1e-9));
  const double T = r.summary["simulated_time_s"].get<double>();
  CHECK(down.util == dtsim_test::Rel(steps * N * kS / (kB * T)).epsilon(1e-9));
  CHECK(down.util < 1);
  // The busiest link is a server NIC direction (both carry N S per step; ties go by name).
  CHECK(r.summary["busiest_link"]["name"] == "server-0-nic_DOWN");
  CHECK(r.summary["busiest_link"]["bytes"].get<double>() == dtsim_test::Rel(steps * N * kS));
}

TEST_CASE("links.csv: a ring all-reduce over 2 oversubscribed racks crosses each uplink with 2(N-1)/N |W| per collective") {
  const int N = 8, steps = 3;
  json cfg = small_config(N, 0);
  cfg["algorithm"]["comm"] = "allreduce";
  cfg["compute"]["mode"] = "timing-only";
  cfg["training"]["samples"] = steps * N * 16;
  cfg["dataset"]["features"] = 63;
  cfg["dataset"]["classes"] = 64;
  cfg["platform"]["servers"] = {{"count", 0}};
  cfg["platform"]["topology"] = {{"kind", "racks"}, {"racks", 2}, {"oversubscription", 8}};
  const auto r = run_forked(load(cfg));
  REQUIRE(r.exit_code == 0);
  const auto links = parse_links(r.links);
  const double S = 4 * 3904.0;
  // Rank 3 -> 4 crosses rack-0-uplink_UP, rank 7 -> 0 crosses rack-1-uplink_UP: 2(N-1) chunks of S/N.
  for (const char* l : {"rack-0-uplink_UP", "rack-1-uplink_UP", "rack-0-uplink_DOWN", "rack-1-uplink_DOWN"})
    CHECK(links.at(l).bytes == dtsim_test::Rel(steps * 2.0 * (N - 1) * S / N));
  CHECK(links.at("worker-3-nic_UP").bytes == dtsim_test::Rel(steps * 2.0 * (N - 1) * S / N));
  // Uplinks: 4 NICs x 1 Gb/s / 8 = 0.5 Gb/s, the bottleneck of the ring.
  CHECK(links.at("rack-0-uplink_UP").bandwidth == dtsim_test::Rel(kB / 2));
  const std::string busiest = r.summary["busiest_link"]["name"];
  CHECK(busiest.find("-uplink_") != std::string::npos);
}

TEST_CASE("links.csv: a co-located shard's traffic with its own host goes over the loopback") {
  const int N = 4, steps = 2;
  json cfg = small_config(N, 1);
  cfg["platform"]["servers"] = {{"count", 1}, {"placement", "colocated"}};
  cfg["compute"]["mode"] = "timing-only";
  cfg["training"]["samples"] = steps * N * 16;
  const auto r = run_forked(load(cfg));
  REQUIRE(r.exit_code == 0);
  const auto links = parse_links(r.links);
  CHECK(links.at("worker-0-loopback").bytes == dtsim_test::Rel(2.0 * steps * kS));  // push + pull of worker 0
  CHECK(links.at("worker-0-nic_DOWN").bytes == dtsim_test::Rel(steps * (N - 1) * kS));
  CHECK(links.at("worker-1-loopback").bytes == 0);
  CHECK(links.count("server-0-nic_UP") == 0);
}

}  // namespace test_platform_links_cpp
