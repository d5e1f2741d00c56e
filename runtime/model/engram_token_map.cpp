#include "runtime/model/engram_token_map.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <unordered_map>

#include "runtime/common/error.h"
#include "runtime/tokenizer/utf8.h"

namespace strata {
namespace {

constexpr UChar32 kSentinel = 0xE000;  // the reference's placeholder for a lone " "

const icu::Normalizer2& normalizer(bool nfkc) {
  UErrorCode st = U_ZERO_ERROR;
  const icu::Normalizer2* n =
      nfkc ? icu::Normalizer2::getNFKCInstance(st) : icu::Normalizer2::getNFDInstance(st);
  if (U_FAILURE(st) || n == nullptr)
    throw Error(std::string("engram: ICU ") + (nfkc ? "NFKC" : "NFD") +
                " normalizer unavailable: " + u_errorName(st));
  return *n;
}

// Full lowercase mapping of one code point with no context (root locale, so no language
// rules; alone, a capital sigma never meets the final-sigma condition).
void append_lower(UChar32 c, std::u32string& out) {
  UChar src[2], dst[8];
  int32_t n = 0;
  U16_APPEND_UNSAFE(src, n, c);
  UErrorCode st = U_ZERO_ERROR;
  const int32_t m = u_strToLower(dst, 8, src, n, "", &st);
  if (U_FAILURE(st)) {  // no mapping is longer than 3 code points; keep c should ICU disagree
    out.push_back(c);
    return;
  }
  for (int32_t i = 0; i < m;) {
    UChar32 d;
    U16_NEXT(dst, i, m, d);
    out.push_back(d);
  }
}

bool is_collapsed_space(char32_t c) { return c == U' ' || c == U'\t' || c == U'\r' || c == U'\n'; }

}  // namespace

std::string engram_normalize(std::string_view utf8) {
  if (!utf8::is_valid(utf8)) throw Error("engram: text to normalize is not well-formed UTF-8");
  UErrorCode st = U_ZERO_ERROR;
  const icu::UnicodeString src =
      icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  icu::UnicodeString nfd = normalizer(false).normalize(normalizer(true).normalize(src, st), st);
  if (U_FAILURE(st)) throw Error(std::string("engram: ICU normalization failed: ") + u_errorName(st));

  // Marks dropped, the rest lowercased, runs of [ \t\r\n] collapsed into one space.
  std::u32string s;
  bool in_run = false;
  for (int32_t i = 0; i < nfd.length(); i = nfd.moveIndex32(i, 1)) {
    const UChar32 c = nfd.char32At(i);
    if (U_GET_GC_MASK(c) & U_GC_M_MASK) continue;
    std::u32string low;
    append_lower(c, low);
    for (char32_t d : low) {
      if (is_collapsed_space(d)) {
        if (!in_run) s.push_back(U' ');
        in_run = true;
      } else {
        s.push_back(d);
        in_run = false;
      }
    }
  }
  if (s != U" ") {
    size_t b = 0, e = s.size();
    while (b < e && u_isUWhiteSpace(static_cast<UChar32>(s[b]))) ++b;
    while (e > b && u_isUWhiteSpace(static_cast<UChar32>(s[e - 1]))) --e;
    s = s.substr(b, e - b);
    for (char32_t& c : s)
      if (c == static_cast<char32_t>(kSentinel)) c = U' ';
  }
  std::string out;
  for (char32_t c : s) utf8::append(out, static_cast<uint32_t>(c));
  return out;
}

std::vector<int32_t> engram_token_map(const Tokenizer& tok) {
  const size_t n = tok.vocab_size();
  std::vector<int32_t> map(n);
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    const std::string text = tok.decode(std::span<const int32_t>(&id, 1));
    std::string key;
    if (text.find("\xEF\xBF\xBD") != std::string::npos) {
      key = tok.token_text(id);
    } else {
      key = engram_normalize(text);
      if (key.empty()) key = text;
    }
    map[i] = ids.try_emplace(std::move(key), static_cast<int32_t>(ids.size())).first->second;
  }
  return map;
}

}  // namespace strata
