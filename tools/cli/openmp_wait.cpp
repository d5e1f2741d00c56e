#include "tools/cli/openmp_wait.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace strata::cli {

void prefer_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // no restart: the loaded libgomp keeps its default
}

const char* openmp_wait_policy() {
  static const std::string policy = [] {
    if (const char* p = std::getenv("OMP_WAIT_POLICY")) return std::string(p);
    if (const char* s = std::getenv("GOMP_SPINCOUNT")) return "spincount " + std::string(s);
    return std::string("default");
  }();
  return policy.c_str();
}

}  // namespace strata::cli
