// UTF-8 helpers of the tokenizer: WHATWG-style replacement of ill-formed input, detection
// of an incomplete trailing sequence, and the GPT-2 byte <-> character mapping.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::utf8 {

// True when s is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid(std::string_view s);

// s with every maximal ill-formed subpart replaced by U+FFFD, exactly as the WHATWG
// "utf-8 decode" (TextDecoder without fatal) does; a truncated sequence at the end is one
// U+FFFD.
std::string sanitize(std::string_view s);

// Length (0..3) of the trailing bytes of s that form a well-formed but incomplete prefix
// of a UTF-8 sequence (what a stream must hold back until more bytes arrive).
size_t incomplete_tail(std::string_view s);

// Byte length of the UTF-8 sequence starting with lead byte b (1 for an invalid lead).
size_t seq_len(uint8_t b);

// Appends the UTF-8 encoding of code point cp.
void append(std::string& out, uint32_t cp);

// GPT-2 byte-level mapping: byte -> code point of the printable character standing for it.
const std::array<uint32_t, 256>& byte_to_codepoint();
// Inverse: code point -> byte, or -1 when cp stands for no byte.
int codepoint_to_byte(uint32_t cp);

// Decodes the next code point of well-formed UTF-8 at s[i]; advances i.
uint32_t next_codepoint(std::string_view s, size_t& i);

}  // namespace strata::utf8
