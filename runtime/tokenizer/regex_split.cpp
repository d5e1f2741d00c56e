#include "runtime/tokenizer/regex_split.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <utility>

#include "runtime/common/error.h"
#include "runtime/tokenizer/utf8.h"

namespace strata {
namespace {

// ECMAScript WhiteSpace + LineTerminator, as class contents.
constexpr std::string_view kJsSpace =
    "\\x{9}-\\x{D}\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}\\x{FEFF}";

// The DeepSeek-V3 pre-tokenizer (as in its tokenizer.json): digits in runs of up to three,
// CJK ideograph/kana runs, then the word/punctuation/space split.
const std::vector<std::string> kDeepseekV3 = {
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

const std::array<std::pair<std::string_view, const std::vector<std::string>*>, 1> kPreTable = {{
    {"deepseek-v3", &kDeepseekV3},
}};

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

}  // namespace

std::string translate_regex(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c != '\\') {
      if (c == '[' && !in_class) {
        in_class = true;
        out += c;
        // A leading ']' or '^]' is literal inside the class; copy it so it does not close it.
        if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
        if (i + 1 < p.size() && p[i + 1] == ']') out += "\\]", ++i;
        continue;
      }
      if (c == ']' && in_class) in_class = false;
      out += c;
      continue;
    }
    if (i + 1 >= p.size()) {
      out += c;
      break;
    }
    const char e = p[++i];
    if (e == 's') {
      out += in_class ? std::string(kJsSpace) : "[" + std::string(kJsSpace) + "]";
    } else if (e == 'S') {
      if (in_class)
        throw Error("regex '" + std::string(p) + "': \\S inside a character class is not supported");
      out += "[^" + std::string(kJsSpace) + "]";
    } else if (e == 'u') {
      size_t j = i + 1;
      std::string hex;
      if (j < p.size() && p[j] == '{') {
        for (++j; j < p.size() && p[j] != '}'; ++j) hex += p[j];
        i = j;  // at '}'
      } else {
        for (; j < p.size() && j < i + 5; ++j) hex += p[j];
        i = j - 1;
      }
      out += "\\x{" + hex + "}";
    } else {
      out += '\\';
      out += e;
      // Copy the rest of a multi-byte escaped character whole.
      const size_t n = utf8::seq_len(static_cast<uint8_t>(e));
      for (size_t k = 1; k < n && i + 1 < p.size(); ++k) out += p[++i];
    }
  }
  return out;
}

const std::vector<std::string>* gguf_pre_regexes(std::string_view pre_name) {
  for (const auto& [name, regexes] : kPreTable)
    if (name == pre_name) return regexes;
  return nullptr;
}

std::string gguf_pre_name(const std::vector<std::string>& regexes) {
  for (const auto& [name, table] : kPreTable)
    if (*table == regexes) return std::string(name);
  return "";
}

SplitRegex::SplitRegex(const std::string& pattern, const std::string& source) : pattern_(pattern) {
  const std::string translated = translate_regex(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_NO_UTF_CHECK, &err, &err_off, nullptr);
  if (!code) {
    std::array<PCRE2_UCHAR, 256> msg{};
    pcre2_get_error_message(err, msg.data(), msg.size());
    throw_error({source, "pre_tokenizer regex", static_cast<int64_t>(err_off)},
                "cannot compile split regex '" + pattern + "': " + reinterpret_cast<const char*>(msg.data()));
  }
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

SplitRegex::~SplitRegex() { pcre2_code_free(as_code(code_)); }

void SplitRegex::split(std::string_view text, std::vector<std::string_view>& out, bool use_jit) const {
  pcre2_code* code = as_code(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  if (!md) throw Error("out of memory creating PCRE2 match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const uint32_t base_opts = PCRE2_NO_UTF_CHECK | (use_jit && jit_ ? 0u : PCRE2_NO_JIT);
  size_t prev = 0, start = 0;
  while (start <= text.size()) {
    int rc = pcre2_match(code, subject, text.size(), start, base_opts, md, nullptr);
    // The JIT's default stack is small; the interpreter (heap frames) finishes the match.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(code, subject, text.size(), start, base_opts | PCRE2_NO_JIT, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(md);
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(rc, msg.data(), msg.size());
      throw Error("split regex '" + pattern_ + "' failed at byte " + std::to_string(start) + ": " +
                  reinterpret_cast<const char*>(msg.data()));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t ms = ov[0], me = ov[1];
    if (prev < ms) out.push_back(text.substr(prev, ms - prev));
    if (me > ms) {
      out.push_back(text.substr(ms, me - ms));
      prev = start = me;
    } else {  // empty match: it only cuts the gap; move on by one character
      prev = ms;
      if (ms >= text.size()) break;
      start = ms + utf8::seq_len(static_cast<uint8_t>(text[ms]));
    }
  }
  pcre2_match_data_free(md);
  if (prev < text.size()) out.push_back(text.substr(prev));
}

}  // namespace strata
