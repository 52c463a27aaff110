// Topologies (issue 5): every kind builds, names its hosts worker-<i>/server-<k>, and routes as
// documented in docs/platforms.md (links in order, latency = sum of the links' latencies).
#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "sim/platform.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_platform_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;
namespace sg4 = simgrid::s4u;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Builds the platform of `cfg` in a forked child (one SimGrid engine per process) and reports the
// routes between `pairs`, every host's speed and core count, and the servers' hosts.
json probe(const json& cfg, const Pairs& pairs) {
  const auto x = load(cfg);
  char tmpl[] = "/tmp/dtsim-probe-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ::close(fd);
  const std::string out = tmpl;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    json j;
    try {
      xbt_log_control_set("root.thres:critical");
      sg4::Engine e("probe");
      sim::configure_network(x.platform);
      const auto built = sim::build_platform(x.platform, x.seed);
      for (const auto& [a, b] : pairs) {
        std::vector<sg4::Link*> links;
        double lat = 0;
        sg4::Host::by_name(a)->route_to(sg4::Host::by_name(b), links, &lat);
        json r = {{"latency", lat}, {"links", json::array()}, {"bandwidths", json::array()}};
        for (auto* l : links) {
          r["links"].push_back(l->get_name());
          r["bandwidths"].push_back(l->get_bandwidth());
        }
        j["routes"][a + "->" + b] = r;
      }
      for (auto* h : e.get_all_hosts()) j["hosts"][h->get_name()] = {{"speed", h->get_speed()}, {"cores", h->get_core_count()}};
      for (auto* h : built.servers) j["servers"].push_back(h->get_name());
      j["groups"] = built.worker_group;
      j["links"] = e.get_link_count();
    } catch (const std::exception& ex) {
      j["error"] = ex.what();
    }
    io::atomic_write(out, j.dump());
    std::fflush(nullptr);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  json j = json::parse(slurp(out));
  std::filesystem::remove(out);
  if (j.contains("error")) FAIL(j["error"].get<std::string>());
  return j;
}

json platform_cfg(const json& platform) {
  json cfg = small_config(4, 1);
  cfg["platform"] = platform;
  if (platform["servers"].value("count", 1) == 0) cfg["algorithm"]["comm"] = "allreduce";  // no PS
  return cfg;
}

std::vector<std::string> links_of(const json& j, const std::string& a, const std::string& b) {
  return j["routes"][a + "->" + b]["links"].get<std::vector<std::string>>();
}
double latency_of(const json& j, const std::string& a, const std::string& b) {
  return j["routes"][a + "->" + b]["latency"].get<double>();
}
using V = std::vector<std::string>;

}  // namespace

TEST_CASE("star: NIC up, optional backbone, NIC down, the loopback for same-host traffic") {
  json p = json::parse(R"({"network": {"model": "exact"}, "topology": {"kind": "star", "backbone": {"bandwidth": "40Gbps", "latency": "3us"}},
    "workers": {"count": 3, "speed": "2Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 1, "speed": "1Tf", "link": {"bandwidth": "25Gbps", "latency": "5us"}}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-2"}, {"worker-1", "server-0"}, {"worker-0", "worker-0"}});
  CHECK(links_of(j, "worker-0", "worker-2") == V{"worker-0-nic_UP", "backbone", "worker-2-nic_DOWN"});
  CHECK(latency_of(j, "worker-0", "worker-2") == dtsim_test::Rel(23e-6).epsilon(1e-12));
  CHECK(links_of(j, "worker-1", "server-0") == V{"worker-1-nic_UP", "backbone", "server-0-nic_DOWN"});
  CHECK(latency_of(j, "worker-1", "server-0") == dtsim_test::Rel(18e-6).epsilon(1e-12));
  CHECK(j["routes"]["worker-1->server-0"]["bandwidths"] == json::array({10e9 / 8, 40e9 / 8, 25e9 / 8}));
  CHECK(links_of(j, "worker-0", "worker-0") == V{"worker-0-loopback"});
  CHECK(latency_of(j, "worker-0", "worker-0") == 0);
  CHECK(j["hosts"]["worker-2"]["speed"] == 2e12);
  CHECK(j["hosts"]["server-0"]["speed"] == 1e12);
  CHECK(j["hosts"].size() == 5);  // 3 workers, 1 server, the runtime's control host
  CHECK(j["hosts"].contains("dtsim-control"));
}

TEST_CASE("racks: uplink = NIC sum / oversubscription, spine crossed once, racks are contiguous ranks") {
  json p = json::parse(R"({"network": {"model": "exact"},
    "topology": {"kind": "racks", "racks": 2, "oversubscription": 4, "uplink": {"latency": "2us"}, "spine": {"bandwidth": "100Gbps", "latency": "1us"}},
    "workers": {"count": 8, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 2, "link": {"bandwidth": "10Gbps", "latency": "10us"}}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-3"}, {"worker-0", "worker-4"}, {"worker-7", "worker-1"}, {"worker-5", "server-1"},
                                          {"worker-5", "server-0"}});
  CHECK(links_of(j, "worker-0", "worker-3") == V{"worker-0-nic_UP", "worker-3-nic_DOWN"});
  CHECK(latency_of(j, "worker-0", "worker-3") == dtsim_test::Rel(20e-6).epsilon(1e-12));
  CHECK(links_of(j, "worker-0", "worker-4") ==
        V{"worker-0-nic_UP", "rack-0-uplink_UP", "spine", "rack-1-uplink_DOWN", "worker-4-nic_DOWN"});
  CHECK(latency_of(j, "worker-0", "worker-4") == dtsim_test::Rel(25e-6).epsilon(1e-12));
  CHECK(links_of(j, "worker-7", "worker-1") ==
        V{"worker-7-nic_UP", "rack-1-uplink_UP", "spine", "rack-0-uplink_DOWN", "worker-1-nic_DOWN"});
  // Rack 0: workers 0-3 + server-0 (shard k in rack k mod R): 5 NICs of 10 Gb/s / 4.
  CHECK(j["routes"]["worker-7->worker-1"]["bandwidths"][3].get<double>() == dtsim_test::Rel(5 * 10e9 / 8 / 4));
  CHECK(j["routes"]["worker-7->worker-1"]["bandwidths"][1].get<double>() == dtsim_test::Rel(5 * 10e9 / 8 / 4));
  CHECK(links_of(j, "worker-5", "server-1") == V{"worker-5-nic_UP", "server-1-nic_DOWN"});  // same rack
  CHECK(links_of(j, "worker-5", "server-0").size() == 5);
  CHECK(j["groups"] == json::array({0, 0, 0, 0, 1, 1, 1, 1}));
}

TEST_CASE("racks: explicit uplink bandwidth, no spine, uneven racks") {
  json p = json::parse(R"({"network": {"model": "exact"},
    "topology": {"kind": "racks", "racks": 3, "uplink": {"bandwidth": "20Gbps"}},
    "workers": {"count": 7, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 0}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-6"}});
  CHECK(links_of(j, "worker-0", "worker-6") == V{"worker-0-nic_UP", "rack-0-uplink_UP", "rack-2-uplink_DOWN", "worker-6-nic_DOWN"});
  CHECK(j["routes"]["worker-0->worker-6"]["bandwidths"][1] == 20e9 / 8);
  CHECK(j["groups"] == json::array({0, 0, 1, 1, 2, 2, 2}));  // rack r = ranks [floor(r·N/R), floor((r+1)·N/R))
}

TEST_CASE("fat-tree: 2 levels of 4-port switches, leaves of one switch meet at it, idle slots are hosts") {
  json p = json::parse(R"({"network": {"model": "exact"},
    "topology": {"kind": "fat-tree", "levels": 2, "down": [4, 4], "up": [1, 2], "link_count": [1, 1], "link": {"bandwidth": "40Gbps", "latency": "1us"}},
    "workers": {"count": 12, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 1}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-3"}, {"worker-0", "worker-4"}, {"worker-11", "server-0"}});
  const auto same = links_of(j, "worker-0", "worker-3");
  REQUIRE(same.size() == 4);  // NIC, leaf up, leaf down, NIC
  CHECK(same.front() == "worker-0-nic_UP");
  CHECK(same.back() == "worker-3-nic_DOWN");
  CHECK(latency_of(j, "worker-0", "worker-3") == dtsim_test::Rel(22e-6).epsilon(1e-12));
  const auto across = links_of(j, "worker-0", "worker-4");
  REQUIRE(across.size() == 6);  // NIC, up to the leaf switch, up to a top switch, down, down, NIC
  CHECK(latency_of(j, "worker-0", "worker-4") == dtsim_test::Rel(24e-6).epsilon(1e-12));
  CHECK(j["routes"]["worker-0->worker-4"]["bandwidths"][2] == 40e9 / 8);
  CHECK(links_of(j, "worker-11", "server-0").size() == 6);  // server-0 sits in slot 12 (4th leaf switch)
  CHECK(j["hosts"].contains("idle-13"));                     // 16 slots: 12 workers + 1 server + 3 idle
  CHECK(j["hosts"].contains("idle-15"));
  CHECK(j["groups"][5] == 1);  // locality group = leaf switch (4 hosts)
}

TEST_CASE("torus: 1 hop to a neighbour, wrap-around, latency = NICs + hops") {
  json p = json::parse(R"({"network": {"model": "exact"},
    "topology": {"kind": "torus", "dims": [4, 2], "link": {"bandwidth": "20Gbps", "latency": "2us"}},
    "workers": {"count": 8, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 0}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-1"}, {"worker-0", "worker-3"}, {"worker-0", "worker-5"}});
  CHECK(links_of(j, "worker-0", "worker-1").size() == 3);
  CHECK(latency_of(j, "worker-0", "worker-1") == dtsim_test::Rel(22e-6).epsilon(1e-12));
  CHECK(links_of(j, "worker-0", "worker-3").size() == 3);  // wrap-around in the first dimension
  CHECK(links_of(j, "worker-0", "worker-5").size() == 4);  // (0,0) -> (1,1): two hops
  CHECK(latency_of(j, "worker-0", "worker-5") == dtsim_test::Rel(24e-6).epsilon(1e-12));
}

TEST_CASE("dragonfly: same router, same group, other group") {
  json p = json::parse(R"({"network": {"model": "exact"},
    "topology": {"kind": "dragonfly", "groups": [2, 1], "chassis": [2, 1], "routers": [2, 1], "nodes": 2, "link": {"bandwidth": "20Gbps", "latency": "1us"}},
    "workers": {"count": 16, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 0}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-1"}, {"worker-0", "worker-15"}});
  CHECK(links_of(j, "worker-0", "worker-1").size() == 4);  // NIC, router, router, NIC
  CHECK(latency_of(j, "worker-0", "worker-1") == dtsim_test::Rel(22e-6).epsilon(1e-12));
  const auto far = links_of(j, "worker-0", "worker-15");
  CHECK(far.size() > 4);
  CHECK(latency_of(j, "worker-0", "worker-15") == dtsim_test::Rel(20e-6 + (far.size() - 2) * 1e-6).epsilon(1e-12));
}

// SimGrid 3.32's dragonfly reaches group g through router g of a chassis: with hosts in more groups
// than a chassis has routers a route to a higher group read a missing link and the process crashed
// (exit 139, in run and in validate --route). Such platforms are refused; every route of the
// others is found, in both directions.
TEST_CASE("dragonfly: hosts in more groups than a chassis has routers are refused, and every route of the accepted shapes exists") {
  struct Shape {
    int groups, chassis, routers, nodes, workers;
    bool ok;
  };
  for (const Shape& s : std::vector<Shape>{{2, 1, 1, 2, 4, false}, {2, 2, 1, 2, 8, false}, {3, 2, 2, 2, 17, false},
                                           {4, 1, 1, 1, 4, false}, {2, 1, 2, 2, 8, true}, {3, 2, 2, 2, 16, true},
                                           {3, 1, 3, 2, 17, true}, {4, 2, 4, 1, 30, true}}) {
    CAPTURE(s.groups);
    CAPTURE(s.chassis);
    CAPTURE(s.routers);
    CAPTURE(s.workers);
    json p = {{"network", {{"model", "exact"}}},
              {"topology", {{"kind", "dragonfly"}, {"groups", {s.groups, 1}}, {"chassis", {s.chassis, 1}}, {"routers", {s.routers, 1}}, {"nodes", s.nodes}}},
              {"workers", {{"count", s.workers}}},
              {"servers", {{"count", 0}}}};
    if (!s.ok) {
      CHECK_THROWS_WITH_AS(load(platform_cfg(p)), doctest::Contains("platform.topology.routers: SimGrid's dragonfly"), InputError);
      continue;
    }
    Pairs pairs;
    for (int a = 0; a < s.workers; ++a)
      for (int b = 0; b < s.workers; ++b)
        if (a != b) pairs.emplace_back("worker-" + std::to_string(a), "worker-" + std::to_string(b));
    const auto j = probe(platform_cfg(p), pairs);
    for (const auto& [a, b] : pairs) CHECK(links_of(j, a, b).size() >= 2);
  }
}

TEST_CASE("explicit: routers, shared and split-duplex links, shortest hop paths in both directions") {
  json p = json::parse(R"({"network": {"model": "exact"},
    "topology": {"kind": "explicit", "routers": ["sw0", "sw1"],
      "links": [{"name": "a", "bandwidth": "10Gbps", "latency": "1us"}, {"name": "b", "bandwidth": "10Gbps", "latency": "1us"},
                {"name": "trunk", "bandwidth": "40Gbps", "latency": "5us", "sharing": "split-duplex"},
                {"name": "c", "bandwidth": "10Gbps", "latency": "1us"}, {"name": "s", "bandwidth": "10Gbps", "latency": "1us"}],
      "routes": [{"src": "worker-0", "dst": "sw0", "links": ["a"]}, {"src": "worker-1", "dst": "sw0", "links": ["b"]},
                 {"src": "sw0", "dst": "sw1", "links": ["trunk"]}, {"src": "worker-2", "dst": "sw1", "links": ["c"]},
                 {"src": "server-0", "dst": "sw1", "links": ["s"]}]},
    "workers": {"count": 3, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 1, "link": {"bandwidth": "10Gbps", "latency": "10us"}}})");
  const auto j = probe(platform_cfg(p), {{"worker-0", "worker-1"}, {"worker-0", "worker-2"}, {"worker-2", "worker-0"}, {"worker-1", "server-0"}});
  CHECK(links_of(j, "worker-0", "worker-1") == V{"worker-0-nic_UP", "a", "b", "worker-1-nic_DOWN"});
  CHECK(latency_of(j, "worker-0", "worker-1") == dtsim_test::Rel(22e-6).epsilon(1e-12));
  CHECK(links_of(j, "worker-0", "worker-2") == V{"worker-0-nic_UP", "a", "trunk_UP", "c", "worker-2-nic_DOWN"});
  CHECK(links_of(j, "worker-2", "worker-0") == V{"worker-2-nic_UP", "c", "trunk_DOWN", "a", "worker-0-nic_DOWN"});
  CHECK(latency_of(j, "worker-2", "worker-0") == dtsim_test::Rel(27e-6).epsilon(1e-12));
  CHECK(links_of(j, "worker-1", "server-0") == V{"worker-1-nic_UP", "b", "trunk_UP", "s", "server-0-nic_DOWN"});
}

TEST_CASE("co-located shards run on worker hosts (spread evenly), with a core each, their traffic to that worker is local") {
  json p = json::parse(R"({"network": {"model": "exact"}, "topology": {"kind": "star"},
    "workers": {"count": 8, "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 4, "placement": "colocated"}})");
  const auto j = probe(platform_cfg(p), {{"worker-2", "worker-2"}, {"worker-1", "worker-2"}});
  CHECK(j["servers"] == json::array({"worker-0", "worker-2", "worker-4", "worker-6"}));
  CHECK(j["hosts"]["worker-2"]["cores"] == 2);
  CHECK(j["hosts"]["worker-3"]["cores"] == 1);
  CHECK(!j["hosts"].contains("server-0"));
  CHECK(links_of(j, "worker-2", "worker-2") == V{"worker-2-loopback"});
  CHECK(j["routes"]["worker-2->worker-2"]["bandwidths"][0] == 100e9);  // network.loopback_bandwidth
}

TEST_CASE("heterogeneous worker groups: speeds and NICs per group, ranks in group order") {
  json p = json::parse(R"({"network": {"model": "exact"}, "topology": {"kind": "star"},
    "workers": {"link": {"bandwidth": "10Gbps", "latency": "10us"},
                "groups": [{"count": 2, "speed": "15Tf", "link": {"bandwidth": "25Gbps", "latency": "5us"}},
                           {"count": 3, "speed": "5Tf"}]},
    "servers": {"count": 1}})");
  const auto x = load(platform_cfg(p));
  CHECK(x.platform.workers.count == 5);
  const auto j = probe(platform_cfg(p), {{"worker-1", "worker-2"}});
  CHECK(j["hosts"]["worker-0"]["speed"] == 15e12);
  CHECK(j["hosts"]["worker-1"]["speed"] == 15e12);
  CHECK(j["hosts"]["worker-2"]["speed"] == 5e12);
  CHECK(j["hosts"]["worker-4"]["speed"] == 5e12);
  CHECK(j["routes"]["worker-1->worker-2"]["bandwidths"] == json::array({25e9 / 8, 10e9 / 8}));
  CHECK(latency_of(j, "worker-1", "worker-2") == dtsim_test::Rel(15e-6).epsilon(1e-12));
}

TEST_CASE("bisection bandwidth per topology (docs/platforms.md formulas)") {
  auto bis = [](const char* text) { return sim::bisection_bandwidth(load(platform_cfg(json::parse(text))).platform); };
  const double G = 1e9 / 8;
  CHECK(bis(R"({"topology": {"kind": "star"}, "workers": {"count": 8, "link": {"bandwidth": "10Gbps"}}, "servers": {"count": 0}})") ==
        dtsim_test::Rel(40 * G));
  CHECK(bis(R"({"topology": {"kind": "star", "backbone": {"bandwidth": "25Gbps"}}, "workers": {"count": 8, "link": {"bandwidth": "10Gbps"}}, "servers": {"count": 0}})") ==
        dtsim_test::Rel(25 * G));
  CHECK(bis(R"({"topology": {"kind": "racks", "racks": 4, "oversubscription": 2}, "workers": {"count": 16, "link": {"bandwidth": "10Gbps"}}, "servers": {"count": 0}})") ==
        dtsim_test::Rel(2 * 20 * G));
  CHECK(bis(R"({"topology": {"kind": "fat-tree", "levels": 2, "down": [4, 4], "up": [1, 2], "link": {"bandwidth": "10Gbps"}}, "workers": {"count": 16, "link": {"bandwidth": "10Gbps"}}, "servers": {"count": 0}})") ==
        dtsim_test::Rel(40 * G));  // 4 leaf switches x 2 uplinks x 10 Gb/s / 2
  CHECK(bis(R"({"topology": {"kind": "torus", "dims": [4, 4], "link": {"bandwidth": "10Gbps"}}, "workers": {"count": 16, "link": {"bandwidth": "100Gbps"}}, "servers": {"count": 0}})") ==
        dtsim_test::Rel(2 * 4 * 10 * G));
}

}  // namespace test_platform_cpp
