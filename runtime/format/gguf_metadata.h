// Typing of GGUF metadata written by strata: JSON values (as config and tokenizer
// exporters produce them) become GGUF key/values with the types llama.cpp expects.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/format/gguf.h"

namespace strata {

// Object key -> value. Integers become u32 (i32 when negative, u64/i64 when wider),
// reals f32, booleans bool, strings string; arrays take the type of their elements (integer
// arrays i32, as tokenizer.ggml.token_type is). Throws strata::Error naming a key whose
// value cannot be expressed (null, object, mixed array).
std::vector<GgufKV> gguf_kvs_from_json(const nlohmann::json& metadata);

}  // namespace strata
