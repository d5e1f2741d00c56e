#include "cpu-kernels/kernel_choices.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <type_traits>

namespace strata {
namespace {

bool env_off(const char* name) {
  const char* e = std::getenv(name);
  return e && std::string(e) == "0";
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* e = std::getenv(name);
  if (!e || !*e) return fallback;
  return static_cast<int64_t>(std::atoll(e));
}

// The choices in effect, one atomic per field: the kernels read them from many threads.
struct Stored {
  std::atomic<bool> int_dot, int_dot_tiles, avx_vnni, avx512_vbmi, gemm_bf16, batch_invariant;
  std::atomic<int64_t> gemm_min_batch, int_dot_gemm_min_batch, gemm_panel_mb;
  std::array<std::atomic<int64_t>, KernelChoices::kTypeSlots> tiles_min_batch;
  explicit Stored(const KernelChoices& c) { store(c); }
  void store(const KernelChoices& c) {
    int_dot = c.int_dot;
    int_dot_tiles = c.int_dot_tiles;
    avx_vnni = c.avx_vnni;
    avx512_vbmi = c.avx512_vbmi;
    gemm_bf16 = c.gemm_bf16;
    batch_invariant = c.batch_invariant;
    gemm_min_batch = c.gemm_min_batch;
    int_dot_gemm_min_batch = c.int_dot_gemm_min_batch;
    gemm_panel_mb = c.gemm_panel_mb;
    for (size_t i = 0; i < tiles_min_batch.size(); ++i) tiles_min_batch[i] = c.tiles_min_batch[i];
  }
};

Stored& stored() {
  static Stored s(KernelChoices::from_environment());
  return s;
}

}  // namespace

KernelChoices KernelChoices::from_environment() {
  KernelChoices c;
  c.int_dot = !env_off("STRATA_INT_DOT");
  c.int_dot_tiles = !env_off("STRATA_INT_DOT_TILES");
  c.avx_vnni = !env_off("STRATA_AVX_VNNI");
  c.avx512_vbmi = !env_off("STRATA_AVX512_VBMI");
  c.gemm_bf16 = !env_off("STRATA_GEMM_BF16");
  const int64_t g = env_int("STRATA_GEMM_MIN_BATCH", 16);
  c.gemm_min_batch = g <= 0 ? 0 : g;
  const int64_t ig = env_int("STRATA_INT_DOT_GEMM_MIN_BATCH", 0);
  c.int_dot_gemm_min_batch = ig > 0 ? ig : 0;
  const int64_t p = env_int("STRATA_GEMM_PANEL_MB", 64);
  c.gemm_panel_mb = p > 0 ? p : 64;
  return c;
}

std::string KernelChoices::describe() const {
  std::string d = int_dot ? "int8 dots" : "exact dots (f32)";
  if (int_dot && !int_dot_tiles) d += " without tiles";
  if (int_dot && !avx_vnni) d += " without AVX-VNNI";
  if (int_dot && !avx512_vbmi) d += " without VBMI";
  d += gemm_min_batch > 0 ? ", " + std::string(gemm_bf16 ? "bf16" : "f32") + " GEMM from " +
                                std::to_string(gemm_min_batch) + " tokens"
                          : ", no GEMM";
  if (int_dot_gemm_min_batch > 0) d += " (integer-dot weights from " + std::to_string(int_dot_gemm_min_batch) + ")";
  if (batch_invariant) d += ", batch-invariant";
  std::string tiles;
  for (size_t i = 0; i < tiles_min_batch.size(); ++i)
    if (tiles_min_batch[i] > 0)
      tiles += (tiles.empty() ? "" : ", ") + std::string(weight_type_name(static_cast<WeightType>(i))) + " from " +
               std::to_string(tiles_min_batch[i]);
  if (int_dot && int_dot_tiles && !tiles.empty()) d += ", tiles " + tiles + " tokens";
  return d;
}

KernelChoices kernel_choices() {
  const Stored& s = stored();
  KernelChoices c;
  c.int_dot = s.int_dot.load(std::memory_order_relaxed);
  c.int_dot_tiles = s.int_dot_tiles.load(std::memory_order_relaxed);
  c.avx_vnni = s.avx_vnni.load(std::memory_order_relaxed);
  c.avx512_vbmi = s.avx512_vbmi.load(std::memory_order_relaxed);
  c.gemm_bf16 = s.gemm_bf16.load(std::memory_order_relaxed);
  c.batch_invariant = s.batch_invariant.load(std::memory_order_relaxed);
  c.gemm_min_batch = s.gemm_min_batch.load(std::memory_order_relaxed);
  c.int_dot_gemm_min_batch = s.int_dot_gemm_min_batch.load(std::memory_order_relaxed);
  c.gemm_panel_mb = s.gemm_panel_mb.load(std::memory_order_relaxed);
  for (size_t i = 0; i < c.tiles_min_batch.size(); ++i) c.tiles_min_batch[i] = s.tiles_min_batch[i].load(std::memory_order_relaxed);
  return c;
}

void set_kernel_choices(const KernelChoices& c) { stored().store(c); }

// Whether member pointers A and B name the same field (pointers to members of different types
// do not compare).
template <auto A, auto B>
constexpr bool is_field() {
  if constexpr (std::is_same_v<decltype(A), decltype(B)>) return A == B;
  else return false;
}

template <auto F>
KernelChoiceType<F> kernel_choice() {
  const Stored& s = stored();
  constexpr auto r = std::memory_order_relaxed;
  if constexpr (is_field<F, &KernelChoices::int_dot>()) return s.int_dot.load(r);
  else if constexpr (is_field<F, &KernelChoices::int_dot_tiles>()) return s.int_dot_tiles.load(r);
  else if constexpr (is_field<F, &KernelChoices::avx_vnni>()) return s.avx_vnni.load(r);
  else if constexpr (is_field<F, &KernelChoices::avx512_vbmi>())
    return s.avx512_vbmi.load(r);
  else if constexpr (is_field<F, &KernelChoices::gemm_bf16>()) return s.gemm_bf16.load(r);
  else if constexpr (is_field<F, &KernelChoices::batch_invariant>()) return s.batch_invariant.load(r);
  else if constexpr (is_field<F, &KernelChoices::gemm_min_batch>()) return s.gemm_min_batch.load(r);
  else if constexpr (is_field<F, &KernelChoices::int_dot_gemm_min_batch>()) return s.int_dot_gemm_min_batch.load(r);
  else if constexpr (is_field<F, &KernelChoices::gemm_panel_mb>()) return s.gemm_panel_mb.load(r);
  else static_assert(!is_field<F, F>(), "a field kernel_choice does not read: add it here");
}
template KernelChoiceType<&KernelChoices::int_dot> kernel_choice<&KernelChoices::int_dot>();
template KernelChoiceType<&KernelChoices::int_dot_tiles> kernel_choice<&KernelChoices::int_dot_tiles>();
template KernelChoiceType<&KernelChoices::avx_vnni> kernel_choice<&KernelChoices::avx_vnni>();
template KernelChoiceType<&KernelChoices::avx512_vbmi> kernel_choice<&KernelChoices::avx512_vbmi>();
template KernelChoiceType<&KernelChoices::gemm_bf16> kernel_choice<&KernelChoices::gemm_bf16>();
template KernelChoiceType<&KernelChoices::batch_invariant> kernel_choice<&KernelChoices::batch_invariant>();
template KernelChoiceType<&KernelChoices::gemm_min_batch> kernel_choice<&KernelChoices::gemm_min_batch>();
template KernelChoiceType<&KernelChoices::int_dot_gemm_min_batch> kernel_choice<&KernelChoices::int_dot_gemm_min_batch>();
template KernelChoiceType<&KernelChoices::gemm_panel_mb> kernel_choice<&KernelChoices::gemm_panel_mb>();

int64_t tiles_min_batch_choice(WeightType t) {
  const auto i = static_cast<size_t>(t);
  return i < KernelChoices::kTypeSlots ? stored().tiles_min_batch[i].load(std::memory_order_relaxed) : 0;
}

}  // namespace strata
