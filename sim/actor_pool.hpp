// A worker host's short-lived jobs — a minibatch's compute chain, a per-tensor push, a collective's
// transfers — run on a few reused SimGrid actors instead of one new actor each.
//
// Why: a SimGrid 3.32 actor costs its context at creation and at destruction (an 8 MiB stack with
// a guard page: posix_memalign, mprotect twice, the page faults of a fresh stack). The quickstart
// made 11,734 of them for 3,752 minibatches, 17 % of its run's time (perf, bench/README.md
// "Real mode: the compute pool").
//
// What stays the same: a job runs exactly as the fresh actor it replaces would — concurrently with
// everything else, starting at the simulated instant it is posted; a sequence's job starts when
// the previous one of that sequence ends (what joining the previous actor did). The order of
// actors within one simulated instant is kept too, as far as the outputs show: handing a job to an
// idle helper is one SimGrid call (a notify), as creating an actor was, and the helper runs it at
// once when it wakes (it holds its own mutex all along); between two jobs of a sequence it yields
// once, as the next actor's wake-up from its join did. tests/sim/test_actor_pool.cpp checks every
// output against fresh actors (RunHooks::fresh_actors): numbers to 1e-12 (SimGrid's clock may sum
// the same durations over other solver steps), the model bitwise, the trace's events as a multiset
// (transfers ending at one instant may swap their flow arrows' ids).
//
// Lifetime: idle helpers wait for work while the owner (the worker's actor) lives, and exit when it
// returns (close()), so they never keep a finished simulation going; a job posted after that, or
// while every helper is busy, gets a new helper. A host failure kills the helpers with the host,
// and the worker's restart forgets them (reopen()). Internal to sim/.
#pragma once
#include <simgrid/s4u.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/run_state.hpp"

namespace dtsim::sim::detail {

namespace sg4 = simgrid::s4u;

class ActorPool {
 public:
  struct Job {
    std::string label;  // the name a fresh actor would have had (deadlock reports, errors)
    std::function<void()> body, then;  // `then` runs after `body`, also after an error in it
  };
  struct Helper;
  // Jobs run one after another: each starts when the previous one has ended.
  struct Sequence {
    std::deque<Job> pending;          // posted while one of them runs
    std::shared_ptr<Helper> runner;   // the helper running them (null: none runs)
    sg4::ActorPtr last;               // RunHooks::fresh_actors: the previous job's actor
  };

  ActorPool(RunState& s, sg4::Host* host, std::string name) : s_(s), host_(host), name_(std::move(name)) {}
  ActorPool(const ActorPool&) = delete;
  ActorPool& operator=(const ActorPool&) = delete;

  // Runs `job` as a new actor named job.label would.
  void spawn(Job job);
  // Runs `job` once every job posted to `seq` before it has ended.
  void after(Sequence& seq, Job job);
  // The owner returned: idle helpers exit (a SimGrid call: from an actor). Later jobs get new helpers.
  void close();
  // The owner starts again (a restarted worker): its helpers died with the host, and the jobs its
  // sequences still held with them.
  void reopen(std::initializer_list<Sequence*> seqs);

  struct Helper {
    Job job;                  // the job handed to it (has_job)
    Sequence* seq = nullptr;  // the sequence that job belongs to (null: a spawn)
    bool has_job = false, idle = false;
    aid_t pid = -1;  // its actor's
    // Made by the helper before it first waits (creating them is a SimGrid call, which the poster
    // of its first job must not make); the mutex stays locked by the helper except while it waits.
    sg4::MutexPtr m;
    sg4::ConditionVariablePtr wake;
  };

 private:
  // The job's body under guarded(), then `then`; each dropped once it has run.
  void run_job(Job& job);
  // RunHooks::fresh_actors: the job on a new actor of its own.
  sg4::ActorPtr fresh_actor(Job job);
  // Hands the job to an idle helper, or to a new one.
  void start(Job job, Sequence* seq);
  // A helper's life: its jobs, then waiting for the next one until the pool closes.
  void run(const std::shared_ptr<Helper>& h);
  // Its job under guarded(), then the rest of the job's sequence, one by one.
  void execute(const std::shared_ptr<Helper>& h);

  RunState& s_;
  sg4::Host* host_;
  std::string name_;
  bool closed_ = false;
  int created_ = 0;
  std::vector<std::shared_ptr<Helper>> helpers_;
};

}  // namespace dtsim::sim::detail
