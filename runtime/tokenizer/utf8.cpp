#include "runtime/tokenizer/utf8.h"

#include <algorithm>

namespace strata::utf8 {
namespace {

// Continuation count and the allowed range of the first continuation byte for a lead
// byte (Unicode table 3-7); need = -1 for bytes that cannot start a sequence.
struct Lead {
  int need;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
  if (b < 0x80) return {0, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {-1, 0, 0};
}

// Number of bytes of the well-formed sequence at s[i] (> 0), or the negated length of the
// maximal ill-formed subpart (< 0): -k means replace k bytes by one U+FFFD.
long scan(std::string_view s, size_t i) {
  const auto b = static_cast<uint8_t>(s[i]);
  const Lead l = lead_of(b);
  if (l.need == 0) return 1;
  if (l.need < 0) return -1;
  size_t j = i + 1;
  for (int k = 0; k < l.need; ++k, ++j) {
    if (j >= s.size()) return -static_cast<long>(j - i);
    const auto c = static_cast<uint8_t>(s[j]);
    const uint8_t lo = k == 0 ? l.lo : 0x80, hi = k == 0 ? l.hi : 0xBF;
    if (c < lo || c > hi) return -static_cast<long>(j - i);
  }
  return static_cast<long>(j - i);
}

}  // namespace

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const long n = scan(s, i);
    if (n < 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const long n = scan(s, i);
    if (n > 0) {
      out.append(s.substr(i, static_cast<size_t>(n)));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

size_t incomplete_tail(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    const size_t p = s.size() - k;
    const auto b = static_cast<uint8_t>(s[p]);
    if (b >= 0x80 && b < 0xC0) continue;  // continuation byte: look further back
    const Lead l = lead_of(b);
    if (l.need < static_cast<int>(k)) return 0;  // ASCII, invalid lead, or complete
    // The k-1 bytes after the lead must be valid continuations (first one range-checked).
    return scan(s, p) == -static_cast<long>(k) ? k : 0;
  }
  return 0;
}

size_t seq_len(uint8_t b) {
  const Lead l = lead_of(b);
  return l.need < 0 ? 1 : static_cast<size_t>(l.need) + 1;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

const std::array<uint32_t, 256>& byte_to_codepoint() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      t[b] = printable ? b : 256 + extra++;
    }
    return t;
  }();
  return table;
}

int codepoint_to_byte(uint32_t cp) {
  static const std::array<int16_t, 512> inverse = [] {
    std::array<int16_t, 512> inv{};
    inv.fill(-1);
    const auto& fwd = byte_to_codepoint();
    for (int b = 0; b < 256; ++b) inv[fwd[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

uint32_t next_codepoint(std::string_view s, size_t& i) {
  const auto b = static_cast<uint8_t>(s[i]);
  const size_t n = std::min(seq_len(b), s.size() - i);
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3Fu);
  i += n;
  return cp;
}

}  // namespace strata::utf8
