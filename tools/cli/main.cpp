// strata: run the largest DeepSeek-class MoE models on one GPU + DRAM + NVMe.
#include <mimalloc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "runtime/common/activity.h"
#include "runtime/common/files.h"
#include "runtime/format/mapped_file.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_aliases.h"
#include "tools/cli/openmp_wait.h"

std::filesystem::path strata::cli::profiles_dir() {
  if (const char* p = std::getenv("STRATA_PROFILES")) return p;
  return std::filesystem::path(STRATA_SOURCE_DIR) / "profiles";
}

namespace {

// A mapped weight file that shrinks under the run ends it here, with the file named, instead of
// a silent SIGBUS.
void on_sigbus(int, siginfo_t* info, void*) {
  static char msg[1024];
  if (!strata::describe_mapped_fault(info->si_addr, msg, sizeof msg)) {
    static const char other[] = "strata: error: bus error (SIGBUS) outside any mapped model file\n";
    std::memcpy(msg, other, sizeof other);
  }
  const ssize_t ignored = ::write(2, msg, std::strlen(msg));
  (void)ignored;
  ::_exit(1);
}

// Whatever the command printed must have reached standard output (a full disk, a closed pipe).
int finish_stdout() {
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    std::fprintf(stderr, "strata: error: writing standard output failed: %s\n", std::strerror(errno));
    return 1;
  }
  return 0;
}

// mimalloc (which replaces operator new) reports a failed allocation here and then aborts: its
// operator new does not see std::set_new_handler in this build. Thrown from here instead, the
// failure is reported below with what was being allocated.
void on_allocator_error(int err, void*) {
  if (err != ENOMEM && err != EOVERFLOW) return;  // not an allocation that failed
  strata::note_failed_allocation();
  throw std::bad_alloc();
}

}  // namespace

int main(int argc, char** argv) {
  strata::cli::prefer_passive_openmp_wait(argv);  // may start the program over, once
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);
  CLI::App app{"strata — tiered-memory runtime for DeepSeek-class Mixture-of-Experts models", "strata"};
  app.set_version_flag("--version", "strata 0.1.0");
  app.require_subcommand(1);
  strata::cli::register_inspect(app);
  strata::cli::register_tokenize(app);
  strata::cli::register_make_tiny(app);
  strata::cli::register_run(app);
  strata::cli::register_serve(app);
  strata::cli::register_chat(app);
  strata::cli::register_logits(app);
  strata::cli::register_perplexity(app);
  strata::cli::register_profile(app);
  strata::cli::register_plan(app);
  strata::cli::register_tune(app);
  strata::cli::register_bench(app);
  // A failed allocation becomes std::bad_alloc, reported below: through mimalloc's error
  // handler, and through the new handler where operator new is another allocator's.
  mi_register_error(on_allocator_error, nullptr);
  std::set_new_handler([] {
    strata::note_failed_allocation();  // what this thread was doing (runtime/common/activity.h)
    throw std::bad_alloc();
  });
  strata::guard_command_files(true);  // no output replaces an input of the same command
  // An unknown word where the command goes: say so (CLI11 would say "A subcommand is required").
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known |= sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "strata: error: '%s' is not a strata command (%s); see strata --help\n", argv[1],
                   names.c_str());
      return 1;
    }
  }
  try {
    std::vector<std::string> args = strata::cli::expand_flag_aliases(argc, argv);
    args.erase(args.begin());
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return finish_stdout() != 0 ? 1 : rc;
  } catch (const std::bad_alloc&) {
    std::cout.flush();
    std::fflush(stdout);
    const std::string during = strata::take_failed_allocation();
    std::fprintf(stderr,
                 "strata: error: out of memory%s%s: an allocation failed (a model, context or cache larger than this "
                 "machine's memory, or a size taken from the input)\n",
                 during.empty() ? "" : " while ", during.c_str());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // "PATH: reason" (the library's own text is "filesystem error: OP: reason [PATH]").
    std::cout.flush();
    std::fflush(stdout);
    const std::string path = e.path1().empty() ? std::string("(an empty path)") : e.path1().string();
    std::fprintf(stderr, "strata: error: %s: %s\n", path.c_str(), e.code().message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::fflush(stdout);
    std::fprintf(stderr, "strata: error: %s\n", e.what());
    return 1;
  }
  return finish_stdout();
}
