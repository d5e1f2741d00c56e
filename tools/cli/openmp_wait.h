// OpenMP's wait policy for this process. oneDNN's products run on OpenMP (libgomp), whose
// threads by default spin for a long while after each parallel region, on the cores the oneTBB
// workers need for the work that follows; libgomp reads its policy once, as it loads.
#pragma once

namespace strata::cli {

// Where neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: set OMP_WAIT_POLICY=passive and
// start this program over with the same arguments (argv, null-terminated), so that libgomp
// loads with it. Returns only when a policy was already chosen or the restart failed (then the
// process runs on with libgomp's default).
void prefer_passive_openmp_wait(char** argv);

// The policy in effect: OMP_WAIT_POLICY's value, "spincount <GOMP_SPINCOUNT>", or "default".
const char* openmp_wait_policy();

}  // namespace strata::cli
