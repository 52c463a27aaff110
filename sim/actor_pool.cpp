#include "sim/actor_pool.hpp"

namespace dtsim::sim::detail {

// A job that ended the run (its body stopped it or failed: guarded() killed every other actor)
// has no continuation, and the helper that ran it leaves instead of waiting for another job:
// nothing would ever hand it one, and SimGrid would report it as a deadlock.
void ActorPool::run_job(Job& job) {
  guarded(s_, [&] { job.body(); });
  job.body = nullptr;  // what it captured goes now, not when the actor or helper does
  if (job.then && !s_.ending()) job.then();
  job.then = nullptr;
}

sg4::ActorPtr ActorPool::fresh_actor(Job job) {
  // SimGrid keeps its own copy of an actor's code until the actor is freed (ActorImpl::code_): the
  // job lives in one state both copies share, cleared by the running one (tests/sim/test_memory_release.cpp).
  auto st = std::make_shared<Job>(std::move(job));
  return sg4::Actor::create(st->label, host_, [this, st] { run_job(*st); });
}

void ActorPool::spawn(Job job) {
  if (s_.hooks.fresh_actors) fresh_actor(std::move(job));
  else start(std::move(job), nullptr);
}

void ActorPool::after(Sequence& seq, Job job) {
  if (s_.hooks.fresh_actors) {  // the step-by-step form: a new actor that joins the previous one
    if (seq.last)
      job.body = [prev = seq.last, body = std::move(job.body)] {
        prev->join();
        body();
      };
    seq.last = fresh_actor(std::move(job));
    return;
  }
  if (seq.runner) {
    seq.pending.push_back(std::move(job));
    return;
  }
  start(std::move(job), &seq);
}

void ActorPool::start(Job job, Sequence* seq) {
  if (s_.ending()) return;  // (an actor unwinding from the kill posts no more work)
  std::shared_ptr<Helper> h;
  for (auto& c : helpers_)
    if (c->idle) {  // (none once closed: close() lets them go)
      h = c;
      break;
    }
  const bool fresh = !h;
  if (fresh) {
    h = std::make_shared<Helper>();
    helpers_.push_back(h);
  }
  h->idle = false;
  h->job = std::move(job);
  h->seq = seq;
  h->has_job = true;
  if (seq) seq->runner = h;
  if (fresh) sg4::Actor::create(name_ + "-helper-" + std::to_string(created_++), host_, [this, h] { run(h); });
  else h->wake->notify_one();  // one SimGrid call, as the creation was
}

void ActorPool::run(const std::shared_ptr<Helper>& h) {
  h->pid = sg4::this_actor::get_pid();
  for (;;) {
    execute(h);
    if (closed_ || s_.ending()) break;
    if (!h->m) {  // before its first wait (see Helper)
      h->m = sg4::Mutex::create();
      h->wake = sg4::ConditionVariable::create();
      h->m->lock();
    }
    h->idle = true;
    while (!h->has_job && !closed_) h->wake->wait(h->m);  // a kill unwinds from here
    if (!h->has_job) break;
  }
  h->idle = false;
  if (h->m) h->m->unlock();
}

void ActorPool::execute(const std::shared_ptr<Helper>& h) {
  const aid_t me = sg4::this_actor::get_pid();
  while (h->has_job) {  // the job stays in the helper while it runs (a kill unwinds past no capture)
    h->has_job = false;
    s_.job_names[me] = h->job.label;
    run_job(h->job);
    s_.job_names.erase(me);
    Sequence* seq = h->seq;
    if (!seq || s_.ending()) return;
    if (seq->pending.empty()) {
      seq->runner = nullptr;
      h->seq = nullptr;
      return;
    }
    h->job = std::move(seq->pending.front());  // the next job of the sequence
    seq->pending.pop_front();
    h->has_job = true;
    sg4::this_actor::yield();  // where the next actor woke from its join of this one
  }
}

void ActorPool::close() {
  closed_ = true;
  for (auto& h : helpers_)
    if (h->idle) h->wake->notify_one();
  std::erase_if(helpers_, [](const std::shared_ptr<Helper>& h) { return h->idle; });
}

void ActorPool::reopen(std::initializer_list<Sequence*> seqs) {
  closed_ = false;
  for (auto& h : helpers_) {  // killed with the host, some of them in a job
    h->seq = nullptr;
    s_.job_names.erase(h->pid);
  }
  helpers_.clear();
  for (Sequence* q : seqs) *q = Sequence{};
}

}  // namespace dtsim::sim::detail
