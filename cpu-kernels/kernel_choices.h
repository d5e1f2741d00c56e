// The product kernels' switches in one value. The compute context decides them for a run
// (runtime/context/compute_context.h: the command's flags over these defaults) and the kernels
// read them; the STRATA_* environment variables only set the defaults (for experiments). They
// are process-wide while a context runs — the kernels take no context argument — so one
// context's choices hold at a time.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>

#include "cpu-kernels/weight_type.h"

namespace strata {

struct KernelChoices {
  bool int_dot = true;        // quantized weights meet int8 activations (qdot.h); off: --exact-dot, STRATA_INT_DOT=0
  bool int_dot_tiles = true;  // the 16-row tiles where the CPU has them (qdot.h); STRATA_INT_DOT_TILES=0
  bool avx_vnni = true;       // AVX2's tiles by AVX-VNNI where the CPU has it (qdot.h); STRATA_AVX_VNNI=0
  bool avx512_vbmi = true;    // AVX-512's lattice decoders on VBMI where the CPU has it; STRATA_AVX512_VBMI=0
  bool gemm_bf16 = true;      // batched products in BF16 where the CPU has it; off: --exact-dot, STRATA_GEMM_BF16=0
  bool batch_invariant = false;  // every product as one token would take it (linear.h); --batch-invariant
  int64_t gemm_min_batch = 16;   // tokens from which oneDNN multiplies; 0: never (STRATA_GEMM_MIN_BATCH)
  // The same for weights the integer dot reads; 0: chosen by the CPU (qdot.h; STRATA_INT_DOT_GEMM_MIN_BATCH).
  int64_t int_dot_gemm_min_batch = 0;
  int64_t gemm_panel_mb = 64;  // weight rows per oneDNN call, in MiB (STRATA_GEMM_PANEL_MB)
  // Per weight type (indexed by its enum value), the tokens from which the tiles take a product
  // instead of the row kernels; 0: the CPU's default (qdot_tiles_min_batch). A profile's
  // cpu.tiles_min_batch, as `strata tune` measured it on that box.
  static constexpr int kTypeSlots = 64;
  std::array<int64_t, kTypeSlots> tiles_min_batch{};

  // The defaults above with the STRATA_* variables of this process's environment applied.
  static KernelChoices from_environment();
  // "int8 dots, tiles, bf16 GEMM from 16 tokens" and the like, for -v.
  std::string describe() const;
  bool operator==(const KernelChoices&) const = default;
};

// The choices in effect (from_environment() until set).
KernelChoices kernel_choices();
// Sets them (between products: a product reads them as it starts).
void set_kernel_choices(const KernelChoices& c);
// One field of the choices in effect, read alone: the products read these on every call, where
// copying the whole value (with its per-type figures) would be work on their path. F is a
// pointer to a scalar member, e.g. kernel_choice<&KernelChoices::batch_invariant>().
template <auto F>
using KernelChoiceType = std::remove_cvref_t<decltype(KernelChoices{}.*F)>;
template <auto F>
KernelChoiceType<F> kernel_choice();
// kernel_choices().tiles_min_batch of one type, read alone.
int64_t tiles_min_batch_choice(WeightType t);

// Sets the choices for a scope and restores the previous ones after (tests, one command's run).
class ScopedKernelChoices {
 public:
  explicit ScopedKernelChoices(const KernelChoices& c) : saved_(kernel_choices()) { set_kernel_choices(c); }
  ~ScopedKernelChoices() { set_kernel_choices(saved_); }
  ScopedKernelChoices(const ScopedKernelChoices&) = delete;
  ScopedKernelChoices& operator=(const ScopedKernelChoices&) = delete;

 private:
  KernelChoices saved_;
};

}  // namespace strata
