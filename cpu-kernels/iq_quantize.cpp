// Reference quantizers of the lattice i-quants (lowbit_formats.h), for generated test models:
// one scale search by max-abs, each group of elements rounded per element to the nearest level
// and then snapped to the codebook point nearest that rounding (a table per codebook over every
// rounding). Far simpler, and worse, than llama.cpp's importance-weighted searches; the formats'
// readers do not depend on how a block was chosen.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/iq_grids.h"
#include "cpu-kernels/lowbit_formats.h"

namespace strata {
namespace {

enum class Signs { Parity7, Byte, Shift };

struct Spec {
  int bytes;
  int scale_every;  // 16 or 32 elements per sub-block scale
  int smax;         // largest scale field (odd scale 2s + 1)
  float dmul;       // D = f16 scale · dmul
  int point;        // elements per codebook point (8 or 4)
  Signs signs;
  int shift_every;  // IQ1: elements per ±1/8 shift
};

// Per codebook: its points' values, the level values an element rounds to, and for every
// rounding (one level index per element) the nearest point.
struct Codebook {
  std::vector<std::array<int, 8>> points;
  std::vector<int> levels;
  std::vector<uint16_t> nearest;
  int elems = 8;

  int code_of(const float* t) const {
    int code = 0, mul = 1;
    for (int j = 0; j < elems; ++j) {
      int best = 0;
      for (int k = 1; k < static_cast<int>(levels.size()); ++k)
        if (std::fabs(t[j] - static_cast<float>(levels[k])) < std::fabs(t[j] - static_cast<float>(levels[best])))
          best = k;
      code += best * mul;
      mul *= static_cast<int>(levels.size());
    }
    return code;
  }
};

template <typename W>
Codebook make_codebook(const W* grid, int n, int elems, std::vector<int> levels) {
  Codebook cb;
  cb.elems = elems;
  cb.levels = std::move(levels);
  for (int i = 0; i < n; ++i) {
    std::array<int, 8> p{};
    for (int j = 0; j < elems; ++j) p[j] = static_cast<int8_t>(static_cast<uint8_t>(grid[i] >> (8 * j)));
    cb.points.push_back(p);
  }
  const int nl = static_cast<int>(cb.levels.size());
  int codes = 1;
  for (int j = 0; j < elems; ++j) codes *= nl;
  cb.nearest.resize(static_cast<size_t>(codes));
  for (int c = 0; c < codes; ++c) {
    int t[8], rest = c;
    for (int j = 0; j < elems; ++j, rest /= nl) t[j] = cb.levels[rest % nl];
    long best = -1;
    for (int i = 0; i < n; ++i) {
      long e = 0;
      for (int j = 0; j < elems; ++j) e += long{t[j] - cb.points[i][j]} * (t[j] - cb.points[i][j]);
      if (best < 0 || e < best) {
        best = e;
        cb.nearest[c] = static_cast<uint16_t>(i);
      }
    }
  }
  return cb;
}

const Codebook& codebook(WeightType t) {
  const IqGrids& g = iq_grids();
  static const Codebook c2xxs = make_codebook(g.iq2xxs, 256, 8, {8, 25, 43});
  static const Codebook c2xs = make_codebook(g.iq2xs, 512, 8, {8, 25, 43});
  static const Codebook c2s = make_codebook(g.iq2s, 1024, 8, {8, 25, 43});
  static const Codebook c3xxs = make_codebook(g.iq3xxs, 256, 4, {4, 12, 20, 28, 36, 44, 52, 62});
  static const Codebook c3s = make_codebook(g.iq3s, 512, 4, {1, 3, 5, 7, 9, 11, 13, 15});
  static const Codebook c1 = make_codebook(g.iq1s, 2048, 8, {-1, 0, 1});
  switch (t) {
    case WeightType::IQ2_XXS: return c2xxs;
    case WeightType::IQ2_XS: return c2xs;
    case WeightType::IQ2_S: return c2s;
    case WeightType::IQ3_XXS: return c3xxs;
    case WeightType::IQ3_S: return c3s;
    default: return c1;
  }
}

Spec spec_of(WeightType t) {
  switch (t) {
    case WeightType::IQ2_XXS: return {66, 32, 15, 0.125f, 8, Signs::Parity7, 0};
    case WeightType::IQ2_XS: return {74, 16, 15, 0.125f, 8, Signs::Parity7, 0};
    case WeightType::IQ2_S: return {82, 16, 15, 0.125f, 8, Signs::Byte, 0};
    case WeightType::IQ3_XXS: return {98, 32, 15, 0.25f, 4, Signs::Parity7, 0};
    case WeightType::IQ3_S: return {110, 32, 15, 1.0f, 4, Signs::Byte, 0};
    case WeightType::IQ1_S: return {50, 32, 7, 0.125f, 8, Signs::Shift, 32};
    default: return {56, 16, 7, 0.125f, 8, Signs::Shift, 8};  // IQ1_M
  }
}

// What one super-block is quantized to, before packing.
struct Choice {
  uint16_t d16 = 0;
  int s[16] = {};        // per scale sub-block
  int idx[64] = {};      // per point
  uint8_t signs[32] = {};  // per 8 elements, bit j: element j negative (IQ2/IQ3)
  int shift[32] = {};      // per 8 elements: ±1 (IQ1)
};

Choice choose(WeightType t, const float* x) {
  const Spec sp = spec_of(t);
  const Codebook& cb = codebook(t);
  const float top = static_cast<float>(*std::max_element(cb.levels.begin(), cb.levels.end()));
  const float lvmax = sp.signs == Signs::Shift ? 9.0f : top;  // IQ1: 8 · 1 + 1
  const int ns = 256 / sp.scale_every;
  Choice c;
  float want[16], dmax = 0;
  for (int k = 0; k < ns; ++k) {
    float a = 0;
    for (int i = 0; i < sp.scale_every; ++i) a = std::max(a, std::fabs(x[k * sp.scale_every + i]));
    want[k] = a / lvmax;
    dmax = std::max(dmax, want[k]);
  }
  if (!(dmax > 0) || !std::isfinite(dmax)) return c;  // zeros (or nothing representable): d = 0
  c.d16 = f32_to_f16(dmax / static_cast<float>(2 * sp.smax + 1) / sp.dmul);
  const float d = f16_to_f32(c.d16) * sp.dmul;
  if (!(d > 0) || !std::isfinite(d)) {
    c.d16 = 0;
    return c;
  }
  for (int k = 0; k < ns; ++k)
    c.s[k] = std::clamp(static_cast<int>(std::nearbyint((want[k] / d - 1) / 2)), 0, sp.smax);
  if (sp.signs == Signs::Shift) {
    for (int k = 0; k < 256 / sp.shift_every; ++k) {
      float sum = 0;
      for (int i = 0; i < sp.shift_every; ++i) sum += x[k * sp.shift_every + i];
      for (int i = 0; i < sp.shift_every / 8; ++i) c.shift[k * sp.shift_every / 8 + i] = sum >= 0 ? 1 : -1;
    }
  } else {
    for (int k = 0; k < 32; ++k) {
      uint8_t bits = 0;
      int smallest = 0;
      for (int j = 0; j < 8; ++j) {
        if (x[8 * k + j] < 0) bits |= static_cast<uint8_t>(1 << j);
        if (std::fabs(x[8 * k + j]) < std::fabs(x[8 * k + smallest])) smallest = j;
      }
      // An odd count of negatives cannot be stored: the smallest element takes the wrong sign.
      if (sp.signs == Signs::Parity7 && (__builtin_popcount(bits) & 1)) bits ^= static_cast<uint8_t>(1 << smallest);
      c.signs[k] = bits;
    }
  }
  for (int p = 0; p < 256 / sp.point; ++p) {
    const int e0 = p * sp.point;
    const float sub = d * static_cast<float>(2 * c.s[e0 / sp.scale_every] + 1);
    float tgt[8];
    for (int j = 0; j < sp.point; ++j) {
      const float v = x[e0 + j] / sub;
      tgt[j] = sp.signs == Signs::Shift ? (v - static_cast<float>(c.shift[e0 / 8])) / 8 : std::fabs(v);
    }
    c.idx[p] = cb.nearest[static_cast<size_t>(cb.code_of(tgt))];
  }
  return c;
}

void put16(uint8_t* p, uint32_t v) {
  const auto h = static_cast<uint16_t>(v);
  std::memcpy(p, &h, 2);
}
void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

void pack(WeightType t, const Choice& c, uint8_t* b) {
  const Spec sp = spec_of(t);
  std::memset(b, 0, static_cast<size_t>(sp.bytes));
  if (t != WeightType::IQ1_M) put16(b, c.d16);
  auto nibbles = [&](uint8_t* dst, int count) {
    for (int k = 0; k < count; ++k) dst[k / 2] |= static_cast<uint8_t>(c.s[k] << (4 * (k % 2)));
  };
  switch (t) {
    case WeightType::IQ2_XXS:
      for (int ib = 0; ib < 8; ++ib) {
        uint32_t idx = 0, aux = static_cast<uint32_t>(c.s[ib]) << 28;
        for (int l = 0; l < 4; ++l) {
          idx |= static_cast<uint32_t>(c.idx[4 * ib + l]) << (8 * l);
          aux |= static_cast<uint32_t>(c.signs[4 * ib + l] & 127) << (7 * l);
        }
        put32(b + 2 + 8 * ib, idx);
        put32(b + 6 + 8 * ib, aux);
      }
      return;
    case WeightType::IQ2_XS:
      for (int k = 0; k < 32; ++k) put16(b + 2 + 2 * k, static_cast<uint32_t>(c.idx[k]) | (c.signs[k] & 127u) << 9);
      nibbles(b + 66, 16);
      return;
    case WeightType::IQ2_S:
      for (int k = 0; k < 32; ++k) {
        b[2 + k] = static_cast<uint8_t>(c.idx[k]);
        b[34 + k] = c.signs[k];
        b[66 + k / 4] |= static_cast<uint8_t>((c.idx[k] >> 8) << (2 * (k % 4)));
      }
      nibbles(b + 74, 16);
      return;
    case WeightType::IQ3_XXS:
      for (int p = 0; p < 64; ++p) b[2 + p] = static_cast<uint8_t>(c.idx[p]);
      for (int ib = 0; ib < 8; ++ib) {
        uint32_t aux = static_cast<uint32_t>(c.s[ib]) << 28;
        for (int l = 0; l < 4; ++l) aux |= static_cast<uint32_t>(c.signs[4 * ib + l] & 127) << (7 * l);
        put32(b + 66 + 4 * ib, aux);
      }
      return;
    case WeightType::IQ3_S:
      for (int p = 0; p < 64; ++p) {
        b[2 + p] = static_cast<uint8_t>(c.idx[p]);
        b[66 + p / 8] |= static_cast<uint8_t>((c.idx[p] >> 8) << (p % 8));
      }
      for (int k = 0; k < 32; ++k) b[74 + k] = c.signs[k];
      nibbles(b + 106, 8);
      return;
    case WeightType::IQ1_S:
      for (int ib = 0; ib < 8; ++ib) {
        uint32_t h = static_cast<uint32_t>(c.s[ib]) << 12 | (c.shift[4 * ib] < 0 ? 0x8000u : 0u);
        for (int l = 0; l < 4; ++l) {
          b[2 + 4 * ib + l] = static_cast<uint8_t>(c.idx[4 * ib + l]);
          h |= static_cast<uint32_t>((c.idx[4 * ib + l] >> 8) & 7) << (3 * l);
        }
        put16(b + 34 + 2 * ib, h);
      }
      return;
    default:  // IQ1_M
      for (int k = 0; k < 32; ++k) {
        b[k] = static_cast<uint8_t>(c.idx[k]);
        const int h = ((c.idx[k] >> 8) & 7) | (c.shift[k] < 0 ? 8 : 0);
        b[32 + k / 2] |= static_cast<uint8_t>(h << (4 * (k % 2)));
      }
      for (int w = 0; w < 4; ++w) {
        uint32_t v = static_cast<uint32_t>((c.d16 >> (4 * w)) & 0xF) << 12;
        for (int k = 0; k < 4; ++k) v |= static_cast<uint32_t>(c.s[4 * w + k]) << (3 * k);
        put16(b + 48 + 2 * w, v);
      }
      return;
  }
}

}  // namespace

bool is_lattice_iq(WeightType t) {
  switch (t) {
    case WeightType::IQ2_XXS:
    case WeightType::IQ2_XS:
    case WeightType::IQ2_S:
    case WeightType::IQ3_XXS:
    case WeightType::IQ3_S:
    case WeightType::IQ1_S:
    case WeightType::IQ1_M: return true;
    default: return false;
  }
}

bool quantize_iq_ref(WeightType t, const float* src, int64_t n, std::vector<uint8_t>& out) {
  if (!is_lattice_iq(t)) return false;
  const Spec sp = spec_of(t);
  out.assign(static_cast<size_t>(n / 256 * sp.bytes), 0);
  for (int64_t b = 0; b < n / 256; ++b) pack(t, choose(t, src + b * 256), out.data() + b * sp.bytes);
  return true;
}

}  // namespace strata
