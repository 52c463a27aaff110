// A node's busy spans that are still running (a minibatch's compute, a local update), counted up to
// the moment they are read. metrics.csv's exposed_comm_s_per_step is the workers' clock minus their
// busy seconds at an evaluation instant; a span that ends at that very instant then reads the same
// whether or not its actor has resumed yet. SimGrid's order among same-time events is not part of
// the model, and a resumed run's differs from the uninterrupted one's (docs/outputs.md), so
// counting only spans whose actor has returned made a resumed run's rows differ.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include <simgrid/s4u/Exec.hpp>

namespace dtsim::sim::detail {

class OpenSpans {
 public:
  using Id = uint64_t;

  // A span starting at t0 (running = false: it accrues only between resume() and pause()). With
  // exec, the span ends when the exec does, even before its owner waits for it.
  Id open(double t0, simgrid::s4u::ExecPtr exec = nullptr, bool running = true) {
    spans_.push_back({++last_, 0.0, running ? t0 : kPaused, std::move(exec)});
    return last_;
  }
  // Part-spans of one span (a layer-wise minibatch's phases, not the waits between them).
  void resume(Id id, double t) {
    if (Span* s = find(id)) s->t0 = t;
  }
  void pause(Id id, double t) {
    if (Span* s = find(id); s && s->t0 != kPaused) {
      s->done += t - s->t0;
      s->t0 = kPaused;
    }
  }
  // The span is over (its time is counted elsewhere from now on) or abandoned.
  void close(Id id) {
    for (size_t i = 0; i < spans_.size(); ++i)
      if (spans_[i].id == id) {
        spans_[i] = std::move(spans_.back());
        spans_.pop_back();
        return;
      }
  }
  // Busy seconds of the open spans up to now.
  double busy(double now) const {
    double b = 0;
    for (const Span& s : spans_) {
      b += s.done;
      if (s.t0 == kPaused) continue;
      const bool ended = s.exec && s.exec->get_state() == simgrid::s4u::Activity::State::FINISHED;
      b += (ended ? s.exec->get_finish_time() : now) - s.t0;
    }
    return b;
  }

 private:
  static constexpr double kPaused = -1.0;  // simulated times are >= 0
  struct Span {
    Id id;
    double done;  // closed parts
    double t0;    // start of the running part, or kPaused
    simgrid::s4u::ExecPtr exec;
  };
  Span* find(Id id) {
    for (Span& s : spans_)
      if (s.id == id) return &s;
    return nullptr;
  }
  std::vector<Span> spans_;
  Id last_ = 0;
};

// One span of an OpenSpans (OpenSpans::open's arguments), closed when it goes out of scope (an
// actor killed by a failure unwinds through it, a future dropped unwaited is destroyed).
class OpenSpan {
 public:
  OpenSpan() = default;
  OpenSpan(OpenSpans& o, double t0, simgrid::s4u::ExecPtr exec = nullptr, bool running = true) {
    open(o, t0, std::move(exec), running);
  }
  OpenSpan(const OpenSpan&) = delete;
  OpenSpan& operator=(const OpenSpan&) = delete;
  ~OpenSpan() { close(); }
  void open(OpenSpans& o, double t0, simgrid::s4u::ExecPtr exec = nullptr, bool running = true) {
    close();
    o_ = &o;
    id_ = o.open(t0, std::move(exec), running);
  }
  void resume(double t) {
    if (o_) o_->resume(id_, t);
  }
  void pause(double t) {
    if (o_) o_->pause(id_, t);
  }
  void close() {
    if (o_) o_->close(id_);
    o_ = nullptr;
  }

 private:
  OpenSpans* o_ = nullptr;
  OpenSpans::Id id_ = 0;
};

}  // namespace dtsim::sim::detail
