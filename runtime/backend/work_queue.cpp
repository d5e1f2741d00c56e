#include "runtime/backend/work_queue.h"

#include <pthread.h>
#include <tbb/task_arena.h>

#include <chrono>

#include "cpu-kernels/compute_arena.h"

namespace strata {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Event::wait() const {
  if (!s_) return;
  std::unique_lock<std::mutex> lock(s_->mu);
  s_->cv.wait(lock, [&] { return s_->done; });
  if (s_->error) std::rethrow_exception(s_->error);
}

void Event::settle() const noexcept {
  if (!s_) return;
  std::unique_lock<std::mutex> lock(s_->mu);
  s_->cv.wait(lock, [&] { return s_->done; });
}

bool Event::ready() const {
  if (!s_) return true;
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->done;
}

double Event::start() const {
  if (!s_) return 0;
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->start;
}

double Event::end() const {
  if (!s_) return 0;
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->end;
}

WorkQueue::WorkQueue(std::string name) : name_(std::move(name)), worker_([this] { loop(); }) {}

WorkQueue::~WorkQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

Event WorkQueue::submit(std::function<void()> fn) {
  Event ev;
  ev.s_ = std::make_shared<Event::State>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back({std::move(fn), ev.s_});
  }
  cv_.notify_one();
  return ev;
}

double WorkQueue::busy_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

void WorkQueue::loop() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  // The worker's own arena of one thread: products it runs split nowhere else.
  tbb::task_arena arena(1);
  const StayInOwnArena own;
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    const double t0 = steady_seconds();
    std::exception_ptr error;
    try {
      arena.execute(job.fn);
    } catch (...) {
      error = std::current_exception();
    }
    const double t1 = steady_seconds();
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ += t1 - t0;
    }
    {
      std::lock_guard<std::mutex> lock(job.state->mu);
      job.state->start = t0;
      job.state->end = t1;
      job.state->error = error;
      job.state->done = true;
    }
    job.state->cv.notify_all();
  }
}

}  // namespace strata
