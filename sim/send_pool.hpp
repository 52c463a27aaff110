// Sends a node posts while it already has many outstanding, made by helper actors.
//
// Why: SimGrid 3.32 keeps every unfinished comm an actor will wait for in a std::list on that actor
// and drops each finished one with list::remove, a scan of the whole list. A server shard that
// replies to N workers and waits for the N sends pays O(N) per send, O(N^2) per step: at 2,000
// workers that scan was a quarter of the run (perf, bench/README.md "Speed at scale"). Here a
// node's sends past the first kDirect outstanding ones go to helper actors on the node's host in
// blocks of at most kBlock: a helper posts its block's puts as soon as the node yields (the same
// simulated instant, in the node's order) and waits for them, so no actor ever waits on more than
// kBlock comms. Only server shards use it (NodeBase::send): their sends are all posted before they
// block (NodeBase flushes the pool at every blocking call), which keeps the order. The node waits for a send's ticket instead of its comm. What the network sees is
// unchanged: the same transfers, starting at the same simulated times, in the same order; only
// the scheduling within one simulated instant differs (tests/sim/test_send_pool.cpp checks that
// the outputs are identical with and without helpers, RunHooks::direct_sends).
#pragma once
#include <simgrid/s4u.hpp>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sim/layerwise.hpp"  // Notifier
#include "sim/run_state.hpp"

namespace dtsim::sim::detail {

namespace sg4 = simgrid::s4u;

struct SendTicket {
  sg4::Mailbox* box = nullptr;
  Message* msg = nullptr;  // owned by RunState::in_flight until received
  bool done = false;
};

class SendPool {
 public:
  static constexpr size_t kDirect = 64;  // a node's own outstanding sends before helpers take over
  static constexpr size_t kBlock = 64;   // sends per helper block

  SendPool(sg4::Host* host, std::string name) : host_(host), name_(std::move(name)) {}
  // Hands a send to a helper: a full block is posted as soon as the calling actor yields, a partial
  // one at the next flush(), at the same simulated time either way.
  std::shared_ptr<SendTicket> post(sg4::Mailbox* box, Message* msg);
  // Called by the node before anything that blocks it (a wait, a receive, a compute): the block
  // being filled is handed over. Waking a helper is a SimGrid call, which lets the helper run at
  // once; per send, that would post blocks of one or two sends.
  void flush();
  // Blocks the calling actor until `t` is sent (or lost with its peer's host).
  void wait(const SendTicket& t) { done_.wait_until([&] { return t.done; }); }

 private:
  struct Helper {
    std::deque<std::shared_ptr<SendTicket>> queue;  // assigned, not yet posted
    size_t assigned = 0;                            // in its current block
    uint64_t block = 0;                             // its current block's number (posting order)
    bool busy = false;                              // from its first assignment until its block is sent
    Notifier work;
  };
  void run(Helper& h);

  sg4::Host* host_;
  std::string name_;
  std::vector<std::unique_ptr<Helper>> helpers_;
  Helper* filling_ = nullptr;  // the helper taking the current burst's sends
  uint64_t blocks_ = 0;        // blocks handed out
  uint64_t posted_ = 0;        // blocks posted: helpers post theirs in turn, so the puts keep the node's order
  Notifier turn_;              // a block was posted
  Notifier done_;              // a ticket was sent
};

}  // namespace dtsim::sim::detail
