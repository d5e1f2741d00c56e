// How the work of the layers split between the CPU and a device, and how much of it ran at
// once: the figures `strata run` prints per device at the end.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "runtime/backend/work_queue.h"

namespace strata {

struct ScheduleStats {
  double host_s = 0;    // the CPU's share of the scheduled layers
  double device_s = 0;  // the device's share (its work's run time)
  double both_s = 0;    // time both were busy at once
  double span_s = 0;    // wall time of the passes with device work, first start to last end
  double wait_s = 0;    // time the CPU waited for the device at the end of its share
  int64_t passes = 0;   // layer passes that had work on the device
  // Of them, those whose CPU share began before the device's work ended: the CPU computed its
  // share while the device worked, not after waiting for it.
  int64_t host_first = 0;

  // One layer pass: the CPU was busy over [host0, host1]; `dev` ran on the device, one after
  // another on its queue (all done; an event of work that never ran counts nothing).
  void add(double host0, double host1, std::initializer_list<const Event*> dev) {
    host_s += host1 - host0;
    bool ran = false;
    double first = host0, last = host1, dev_end = 0;
    for (const Event* e : dev) {
      if (e->start() == 0) continue;
      ran = true;
      device_s += e->end() - e->start();
      both_s += std::max(0.0, std::min(host1, e->end()) - std::max(host0, e->start()));
      first = std::min(first, e->start());
      last = std::max(last, e->end());
      dev_end = std::max(dev_end, e->end());
    }
    if (!ran) return;
    ++passes;
    host_first += host0 < dev_end;
    span_s += last - first;
  }
};

}  // namespace strata
