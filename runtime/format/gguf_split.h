// Models split by llama.cpp's gguf-split into <prefix>-NNNNN-of-MMMMM.gguf parts.
#pragma once

#include <filesystem>
#include <vector>

#include "runtime/format/gguf.h"

namespace strata {

// All parts of the split model `any_part` belongs to, in order (part 1 first); {any_part}
// when its name is not of the split form. Throws strata::Error naming a missing part, or a
// name whose numbers are impossible (part 0, part past the count).
std::vector<std::filesystem::path> gguf_split_paths(const std::filesystem::path& any_part);

// Checks the parts (in order) against their split.* metadata where present: split.count is
// the number of parts, split.no the 0-based index, split.tensors.count the total tensors; and
// that no tensor name appears in two parts. Throws strata::Error naming the disagreeing file.
void check_gguf_split(const std::vector<GgufFile>& parts);

}  // namespace strata
