// Ordered work on one device, and the events that say when it ran: the stream of the backend
// seam (runtime/backend/device.h). A queue is one worker thread that runs what it is given in
// order, inside its own oneTBB arena (so its products do not take the CPU's compute threads);
// an Event is the completion of one submitted piece of work.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace strata {

// Seconds on the steady clock (the time base of every event and busy figure).
double steady_seconds();

class Event {
 public:
  Event() = default;  // an event that has already happened (work that ran inline)
  // Blocks until the work ran; rethrows what it threw.
  void wait() const;
  // Blocks until the work ran, whatever it threw (for cleanup paths: the work may read memory
  // the caller is about to release).
  void settle() const noexcept;
  bool ready() const;
  // When the work started and ended (steady_seconds); 0 until it ran, and for inline work.
  double start() const;
  double end() const;

 private:
  friend class WorkQueue;
  struct State {
    mutable std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
    double start = 0, end = 0;
  };
  std::shared_ptr<State> s_;
};

class WorkQueue {
 public:
  explicit WorkQueue(std::string name);
  // Runs what is still queued, then stops the worker.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Runs fn on the worker after everything submitted before it.
  Event submit(std::function<void()> fn);
  // Seconds the worker has spent running work.
  double busy_seconds() const;
  const std::string& name() const { return name_; }

 private:
  struct Job {
    std::function<void()> fn;
    std::shared_ptr<Event::State> state;
  };
  void loop();

  std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  double busy_ = 0;
  std::thread worker_;
};

}  // namespace strata
