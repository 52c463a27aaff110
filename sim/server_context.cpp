// The per-tensor synchronous server step (algorithm.overlap "per-tensor", docs/timing.md), after
// MXNet's KVStore server (kvstore_dist_server.h, DataHandleDefault in sync mode): for each key, the
// server sums the N workers' pushes, updates the key once all N are in and answers the key's pulls
// at once. Here a "key" is a piece: a tensor, or its part on this shard when it was split (sim/
// overlap_plan.hpp, kvstore_pieces). Each piece costs its own optimizer step on this shard's host
// and goes back to the workers as soon as it is updated.
//
// The real update is done once per step, for the whole model, when the last piece anywhere is in:
// every shard's mean (rank order) and optimizer step over its own contiguous range, exactly as
// without overlap (so the parameters are bitwise those of "none"); the replies point into one
// snapshot of the updated model, filled then (no worker reads it before all its pieces are in).
#include "sim/server_context.hpp"

#include "algorithms/common.hpp"

namespace dtsim::sim::detail {

void ServerCtx::apply_all(SyncStepState& st) {
  if (s_.real) {  // each pass cut across the compute pool's idle threads (engine/parallel.hpp)
    for (size_t i = 0; i < st.grads.size(); ++i)  // the first read of the step's gradients
      if (st.grads[i]) s_.settle_gradient(static_cast<int>(i), st.grads[i].get());
    for (int j = 0; j < s_.K; ++j) {
      const size_t off = s_.shard_off[static_cast<size_t>(j)], len = s_.shard_len[static_cast<size_t>(j)];
      std::vector<Message> grads;
      for (const auto& g : st.grads) grads.push_back(Message{.data = Payload{g, off, len}});
      algo::mean_in_rank_order(st.mean[static_cast<size_t>(j)], grads);
      st.apply[static_cast<size_t>(j)]();
    }
    engine::ops::copy(st.snapshot->view(), s_.global.view());
  }
  st.applied = true;
  s_.sync->note.notify();
}

void ServerCtx::sync_step(int tag, int64_t reply_step, bool reply_model, engine::VecView mean,
                          const std::function<void()>& apply) {
  const LayerPlan& p = s_.plan;
  if (p.overlap.kind != OverlapSpec::Kind::PerTensor || p.comm != algo::Algorithm::LayerComm::SyncServer) {
    algo::Server::sync_step(tag, reply_step, reply_model, mean, apply);
    return;
  }
  // s_.sync: made before the actors start (sim/runtime.cpp, start_actors)
  SyncStepState& st = s_.sync->steps[reply_step];
  const size_t K = static_cast<size_t>(s_.K), N = static_cast<size_t>(s_.N);
  if (st.apply.empty()) {
    st.apply.resize(K);
    st.mean.resize(K);
    st.grads.resize(N);
    if (s_.real) st.snapshot = s_.snapshot_buffer();  // written whole by apply_all
  }
  st.apply[static_cast<size_t>(shard_)] = apply;
  st.mean[static_cast<size_t>(shard_)] = mean;
  ++st.shards_entered;
  auto ready_to_apply = [&] { return !st.applied && st.shards_entered == s_.K && st.pieces_done == p.pieces.size(); };
  if (ready_to_apply()) apply_all(st);

  const auto& mine = p.pieces_on_shard[static_cast<size_t>(shard_)];
  std::map<size_t, size_t> pushes;  // piece -> pushes received
  size_t complete = 0;
  std::vector<Pending> replies;
  while (complete < mine.size()) {
    Message m = recv_tag(tag);
    if (m.offset < 0)
      throw RuntimeError("server shard " + std::to_string(shard_) + ": a whole-range push under per-tensor overlap");
    const size_t pi = p.piece_at.at(m.offset);
    if (s_.real && !st.grads[static_cast<size_t>(m.src)]) st.grads[static_cast<size_t>(m.src)] = m.data.buf;
    if (++pushes[pi] < N) continue;
    ++complete;
    const Piece& piece = p.pieces[pi];
    work(static_cast<double>(piece.count) * (s_.x.platform.update_flops_per_param + static_cast<double>(N) * s_.group - 1));
    ++st.pieces_done;
    if (ready_to_apply()) apply_all(st);
    if (st.pieces_done == p.pieces.size() && !st.applied)  // the last piece: its reply carries the update
      block_on("the other shards of step " + std::to_string(reply_step - 1), [&] { s_.sync->note.wait_until([&] { return st.applied; }); });
    if (reply_model)
      for (size_t i = 0; i < N; ++i) {
        Message r{.tag = algo::kParams, .step = reply_step, .data = Payload{st.snapshot, piece.offset, piece.count}};
        r.offset = static_cast<int64_t>(piece.offset);
        replies.push_back(send_to_worker(static_cast<int>(i), std::move(r)));
      }
  }
  // The step's update is one: this shard's part of it is done once every piece anywhere is in.
  if (!st.applied) block_on("the other shards' pieces of step " + std::to_string(reply_step - 1), [&] {
    s_.sync->note.wait_until([&] { return st.applied; });
  });
  committed();
  if (!reply_model) algo::broadcast_ack(*this, reply_step);
  for (auto& r : replies) r.wait();
  if (++st.shards_done == s_.K) s_.sync->steps.erase(reply_step);
}

}  // namespace dtsim::sim::detail
