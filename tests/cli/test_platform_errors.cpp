// Malformed platforms (issue 5): every key of the platform section — topologies, placement, worker
// groups, collectives, stragglers, failures — rejects bad values with exit 2 and one line naming
// the file, the dotted JSON path and the reason (same contract as tests/cli/test_cli.cpp).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "helpers.hpp"

namespace test_platform_errors_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

// A platform file from its parts (each a JSON member list without braces, or empty).
std::string platform(const std::string& topology = R"("kind": "star")",
                     const std::string& workers = R"("count": 4, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"})",
                     const std::string& servers = R"("count": 1)", const std::string& extra = "") {
  return R"({"network": {"model": "exact"}, "topology": {)" + topology + R"(}, "workers": {)" + workers +
         R"(}, "servers": {)" + servers + "}" + (extra.empty() ? "" : ", " + extra) + "}";
}

const char* kConfig = R"({"name": "bad", "platform": "platform.json", "model": {"kind": "mlp", "hidden": [8]},
  "dataset": {"kind": "synthetic", "train": 256, "test": 64, "features": 8}, "algorithm": {"name": "ssgd"},
  "training": {"batch_size": 8, "samples": 256}})";

struct Case {
  Case(const char* n, std::string p, std::string pa, std::string r, std::string t = "")
      : name(n), platform(std::move(p)), path(std::move(pa)), reason(std::move(r)), trace(std::move(t)) {}
  const char* name;
  std::string platform;
  std::string path, reason;
  std::string trace;  // contents of bad.trace next to the platform (if not empty)
};

void expect_error(const Result& r, const std::string& file, const std::string& path, const std::string& reason) {
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(r.err.find(file) != std::string::npos);
  if (!path.empty()) CHECK(r.err.find(": " + path + ": ") != std::string::npos);
  CHECK(r.err.find(reason) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
  CHECK(r.err.find("Aborted") == std::string::npos);
  CHECK(r.out.empty());
}

const std::string kW = R"("count": 4, "link": {"bandwidth": "10Gbps", "latency": "10us"})";

}  // namespace

TEST_CASE("malformed platforms: each new key gives exit 2 with file, path and reason") {
  const std::string explicit_ok_links =
      R"("links": [{"name": "trunk", "bandwidth": "10Gbps"}, {"name": "a", "bandwidth": "10Gbps"}])";
  const std::vector<Case> cases = {
      // topologies
      {"topology kind typo", platform(R"("kind": "fat_tree")"), "topology.kind", "did you mean 'fat-tree'?"},
      {"key of another topology", platform(R"("kind": "star", "racks": 2)"), "topology.racks", "unknown key 'racks'"},
      {"racks without a count", platform(R"("kind": "racks")"), "topology.racks", "missing required key"},
      {"racks: ratio and uplink bandwidth", platform(R"("kind": "racks", "racks": 2, "oversubscription": 4, "uplink": {"bandwidth": "20Gbps"})"),
       "topology.oversubscription", "not both"},
      {"racks: zero oversubscription", platform(R"("kind": "racks", "racks": 2, "oversubscription": 0)"), "topology.oversubscription",
       "must be in (0, 1e6]"},
      {"racks: more racks than workers", platform(R"("kind": "racks", "racks": 8)"), "topology", "more racks (8) than workers (4)"},
      {"racks: spine typo", platform(R"("kind": "racks", "racks": 2, "spine": {"bandwith": "10Gbps"})"), "topology.spine.bandwith",
       "did you mean 'bandwidth'?"},
      {"fat-tree: list length", platform(R"("kind": "fat-tree", "levels": 2, "down": [4], "up": [1, 2])"), "topology.down",
       "expected 2 values (one per level), got 1"},
      {"fat-tree: too few slots", platform(R"("kind": "fat-tree", "levels": 1, "down": [4], "up": [1])"), "topology",
       "has 4 host slots but the platform needs 5"},
      {"fat-tree: zero ports", platform(R"("kind": "fat-tree", "levels": 2, "down": [4, 0], "up": [1, 2])"), "topology.down[1]",
       "must be in [1, 100000]"},
      {"torus: zero dimension", platform(R"("kind": "torus", "dims": [4, 0])"), "topology.dims[1]", "must be in [1, 100000]"},
      {"torus: no dimensions", platform(R"("kind": "torus", "dims": [])"), "topology.dims", "expected 1 to 8 dimensions"},
      {"dragonfly: level arity", platform(R"("kind": "dragonfly", "groups": [2], "chassis": [1, 1], "routers": [2, 1], "nodes": 2)"),
       "topology.groups", "expected [count, links]"},
      {"dragonfly: missing nodes", platform(R"("kind": "dragonfly", "groups": [2, 1], "chassis": [1, 1], "routers": [2, 1])"),
       "topology.nodes", "missing required key"},
      {"explicit: no routes", platform(R"("kind": "explicit", )" + explicit_ok_links), "topology.routes", "missing required key"},
      {"explicit: unknown link in a route",
       platform(R"("kind": "explicit", )" + explicit_ok_links + R"(, "routes": [{"src": "worker-0", "dst": "worker-1", "links": ["trnk"]}])"),
       "topology.routes[0].links[0]", "unknown link 'trnk' (did you mean 'trunk'?)"},
      {"explicit: unknown host in a route",
       platform(R"("kind": "explicit", )" + explicit_ok_links + R"(, "routes": [{"src": "wroker-0", "dst": "worker-1", "links": ["a"]}])"),
       "topology.routes[0].src", "unknown host or router 'wroker-0' (did you mean 'worker-0'?)"},
      {"explicit: hosts not connected",
       platform(R"("kind": "explicit", )" + explicit_ok_links + R"(, "routes": [{"src": "worker-0", "dst": "worker-1", "links": ["a"]}])"),
       "topology.routes", "no route from worker-0 to worker-2"},
      {"explicit: duplicate link", platform(R"("kind": "explicit", "links": [{"name": "a", "bandwidth": 1}, {"name": "a", "bandwidth": 1}], "routes": [])"),
       "topology.links[1].name", "duplicate link name 'a'"},
      {"explicit: link sharing typo",
       platform(R"("kind": "explicit", "links": [{"name": "a", "bandwidth": 1, "sharing": "splitduplex"}], "routes": [])"),
       "topology.links[0].sharing", "did you mean 'split-duplex'?"},
      // placement, groups
      {"placement typo", platform(R"("kind": "star")", kW, R"("count": 1, "placement": "colocate")"), "servers.placement",
       "did you mean 'colocated'?"},
      {"co-located shards with their own NIC", platform(R"("kind": "star")", kW, R"("count": 1, "placement": "colocated", "link": {"bandwidth": "1Gbps"})"),
       "servers.link", "not used with placement 'colocated'"},
      {"groups and count together", platform(R"("kind": "star")", R"("count": 4, "groups": [{"count": 4}])"), "workers.count",
       "either 'groups'"},
      {"empty groups", platform(R"("kind": "star")", R"("groups": [])"), "workers.groups", "non-empty list of worker groups"},
      {"zero workers in a group", platform(R"("kind": "star")", R"("groups": [{"count": 2}, {"count": 0}])"), "workers.groups[1].count",
       "must be at least 1"},
      {"group key typo", platform(R"("kind": "star")", R"("groups": [{"count": 2, "sped": "1Tf"}])"), "workers.groups[0].sped",
       "did you mean 'speed'?"},
      // collectives
      {"collective typo", platform(R"("kind": "star")", kW, R"("count": 1)", R"("collective": "rnig")"), "collective", "did you mean 'ring'?"},
      {"hierarchical on a star without groups", platform(R"("kind": "star")", kW, R"("count": 1)", R"("collective": "hierarchical")"),
       "collective", "needs a group size"},
      {"group size out of range", platform(R"("kind": "star")", kW, R"("count": 1)", R"("collective": {"algorithm": "hierarchical", "group_size": 9})"),
       "collective.group_size", "must be in [1, 4]"},
      // stragglers
      {"transient probability above 1", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"p": 1.5, "slowdown": 2}])"),
       "stragglers[0].p", "a probability in (0, 1]"},
      {"transient without slowdown", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"p": 0.5}])"), "stragglers[0].slowdown",
       "either a fixed 'slowdown' or a 'distribution'"},
      {"distribution typo", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"distribution": {"kind": "paretto", "alpha": 2}}])"),
       "stragglers[0].distribution.kind", "did you mean 'pareto'?"},
      {"lognormal without sigma", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"distribution": {"kind": "lognormal"}}])"),
       "stragglers[0].distribution.sigma", "missing required key"},
      {"window ends before it starts", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"from_s": 10, "to_s": 5, "slowdown": 2}])"),
       "stragglers[0].to_s", "must be after from_s"},
      {"transient key in a window", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"from_s": 1, "slowdown": 2, "p": 0.5}])"),
       "stragglers[0].p", "'p' does not apply to a window straggler"},
      {"negative straggler worker", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"workers": [-1], "slowdown": 2}])"),
       "stragglers[0].workers", "worker index -1 is negative"},
      {"missing trace file", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"trace": "nowhere.trace"}])"),
       "stragglers[0].trace", "does not exist"},
      {"malformed trace file", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"trace": "bad.trace"}])"),
       "stragglers[0].trace", "bad.trace:2: expected 'time factor'", "0 1\n5 fast\n"},
      {"binary trace file: its bytes quoted as escapes", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"trace": "bad.trace"}])"),
       "stragglers[0].trace", R"(bad.trace:1: expected 'time factor', got '\x7fELF\x02\x01\x1b[31m\x00\xff')", std::string("\x7f" "ELF\x02\x01\x1b[31m\0\xff\n", 14)},
      {"trace times going back", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"trace": "bad.trace"}])"),
       "stragglers[0].trace", "bad.trace:3: times must increase", "0 1\n5 0.5\n4 1\n"},
      {"trace factor zero", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"trace": "bad.trace"}])"),
       "stragglers[0].trace", "factor must be in (0, 1e6]", "0 0\n"},
      {"unknown link", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"links": ["worker-9-nic"], "bandwidth_factor": 0.5}])"),
       "stragglers[0].links[0]", "no link matches 'worker-9-nic'"},
      {"backbone on a star without one", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"links": "backbone", "bandwidth_factor": 0.5}])"),
       "stragglers[0].links", "no link matches 'backbone'"},
      {"an unknown link's hint names only links the platform has (it listed racks' uplinks on a star)",
       platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"links": "rack-0-uplink", "bandwidth_factor": 0.5}])"),
       "stragglers[0].links",
       "no link matches 'rack-0-uplink'; this platform's links are named like 'worker-0-nic', 'worker-0-loopback', 'server-0-nic', 'server-0-loopback'\n"},  // and nothing more
      {"zero bandwidth factor", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"links": "worker-0-nic", "bandwidth_factor": 0}])"),
       "stragglers[0].bandwidth_factor", "must be in (0, 1e6]"},
      {"jitter without a period", platform(R"("kind": "star")", kW, R"("count": 1)", R"("stragglers": [{"links": "*-nic", "latency_jitter": {"max": "10us"}}])"),
       "stragglers[0].latency_jitter.every_s", "missing required key"},
      {"two jitters on one link",
       platform(R"("kind": "star")", kW, R"("count": 1)",
                R"("stragglers": [{"links": "*-nic", "latency_jitter": {"max": "1us", "every_s": 1}}, {"links": "worker-0-nic", "latency_jitter": {"max": "1us", "every_s": 1}}])"),
       "stragglers[1].links", "already has latency jitter"},
      // failures
      {"failure of an unknown host", platform(R"("kind": "star")", kW, R"("count": 1)", R"("failures": [{"host": "wroker-2", "at_s": 1}])"),
       "failures[0].host", "unknown host 'wroker-2' (did you mean 'worker-2'?)"},
      {"recovery before the failure", platform(R"("kind": "star")", kW, R"("count": 1)", R"("failures": [{"host": "worker-2", "at_s": 5, "recover_s": 3}])"),
       "failures[0].recover_s", "must be after at_s"},
      {"overlapping failures", platform(R"("kind": "star")", kW, R"("count": 1)",
                                        R"("failures": [{"host": "worker-2", "at_s": 5, "recover_s": 10}, {"host": "worker-2", "at_s": 8}])"),
       "failures[1].at_s", "overlaps an earlier failure of worker-2"},
      {"random failure without hosts", platform(R"("kind": "star")", kW, R"("count": 1)", R"("failures": [{"mtbf_s": 100}])"),
       "failures[0].hosts", "missing required key"},
      {"scheduled key in a random failure", platform(R"("kind": "star")", kW, R"("count": 1)", R"("failures": [{"hosts": "worker-*", "mtbf_s": 100, "at_s": 3}])"),
       "failures[0].at_s", "'at_s' does not apply to a random failure"},
      {"random failure pattern matching nothing", platform(R"("kind": "star")", kW, R"("count": 1)", R"("failures": [{"hosts": ["gpu-*"], "mtbf_s": 100}])"),
       "failures[0].hosts[0]", "unknown host 'gpu-*'"},
      {"scheduled and random failures of one host",
       platform(R"("kind": "star")", kW, R"("count": 1)",
                R"("failures": [{"host": "worker-1", "at_s": 1}, {"hosts": ["worker-*"], "mtbf_s": 100}])"),
       "failures[1].hosts", "worker-1 already has a scheduled failure"},
      {"group_size on a ring: a key of hierarchical, not 'unknown'", platform(R"("kind": "star")", kW, R"("count": 1)", R"("collective": {"algorithm": "ring", "group_size": 2})"),
       "collective.group_size", "a key of the \"hierarchical\" algorithm, not of \"ring\""},
      {"empty worker groups", platform(R"("kind": "star")", R"("groups": [])"), "workers.groups",
       "expected a non-empty list of worker groups, got an empty list"},  // said "got an array"
      {"failures is not a list", platform(R"("kind": "star")", kW, R"("count": 1)", R"("failures": {"host": "worker-0", "at_s": 1})"),
       "failures", "expected a list of failures"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SUBCASE(c.name) {
      Scratch s;
      const std::string cfg = s.write("bad.json", kConfig);
      s.write("platform.json", c.platform);
      if (!c.trace.empty()) s.write("bad.trace", c.trace);
      // `run` loads through the same code as `validate`: check it on every fourth case (suite time).
      const std::vector<const char*> cmds = i % 4 == 0 ? std::vector<const char*>{"validate", "run"} : std::vector<const char*>{"validate"};
      for (const char* cmd : cmds) {
        CAPTURE(cmd);
        const Result r = dtsim(std::string(cmd) + " " + cfg + " --out " + (s.dir / "out").string());
        expect_error(r, "platform.json", c.path, c.reason);
        CHECK(!fs::exists(s.dir / "out" / "summary.json"));
      }
    }
  }
  SUBCASE("negative loopback bandwidth") {
    Scratch s;
    const std::string cfg = s.write("bad.json", kConfig);
    s.write("platform.json", R"({"network": {"model": "exact", "loopback_bandwidth": "-1Gbps"}, "workers": {"count": 2}})");
    expect_error(dtsim("validate " + cfg), "platform.json", "network.loopback_bandwidth", "negative");
  }
}

TEST_CASE("validate --route: an unknown host or a malformed pair is a usage error (exit 2)") {
  Scratch s;
  const std::string cfg = s.write("ok.json", kConfig);
  s.write("platform.json", platform());
  auto r = dtsim("validate " + cfg + " --route worker-0,sever-0");
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("--route: unknown host 'sever-0' (did you mean 'server-0'?)") != std::string::npos);
  CHECK(r.out.empty());
  r = dtsim("validate " + cfg + " --route worker-0");
  CHECK(r.code == 2);
  CHECK(r.err.find("--route needs two host names") != std::string::npos);
}

}  // namespace test_platform_errors_cpp
