#include "sim/send_pool.hpp"

#include "sim/node_context.hpp"  // wait_comm

namespace dtsim::sim::detail {

std::shared_ptr<SendTicket> SendPool::post(sg4::Mailbox* box, Message* msg) {
  auto t = std::make_shared<SendTicket>(SendTicket{.box = box, .msg = msg});
  // A block is filled by consecutive sends of one instant; a helper still sending an earlier block
  // never takes new ones (they would wait behind it): an idle one does, or a new one.
  if (!filling_ || filling_->assigned == kBlock) {
    filling_ = nullptr;
    for (auto& h : helpers_)
      if (!h->busy) {
        filling_ = h.get();
        break;
      }
    if (!filling_) {
      helpers_.push_back(std::make_unique<Helper>());
      Helper* h = helpers_.back().get();
      sg4::Actor::create(name_ + "-send-" + std::to_string(helpers_.size() - 1), host_, [this, h] { run(*h); })->daemonize();
      filling_ = h;
    }
    filling_->busy = true;
    filling_->block = blocks_++;
  }
  ++filling_->assigned;
  filling_->queue.push_back(t);
  if (filling_->assigned == kBlock) flush();
  return t;
}

void SendPool::flush() {
  if (!filling_) return;
  Helper* h = filling_;
  filling_ = nullptr;  // later sends start another block
  h->work.notify();
}

void SendPool::run(Helper& h) {
  while (true) {
    h.work.wait_until([&] { return !h.queue.empty(); });
    turn_.wait_until([&] { return posted_ == h.block; });  // the blocks before ours are posted
    std::vector<std::pair<std::shared_ptr<SendTicket>, sg4::CommPtr>> block;
    for (auto& t : h.queue) block.emplace_back(t, t->box->put_async(t->msg, t->msg->bytes));
    h.queue.clear();
    h.assigned = 0;
    ++posted_;
    turn_.notify();
    for (auto& [t, c] : block) {
      wait_comm(c);
      t->done = true;
      done_.notify();
    }
    h.busy = false;
  }
}

}  // namespace dtsim::sim::detail
