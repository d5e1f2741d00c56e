// The base run of a KL-divergence comparison: the tokens a perplexity run evaluated and, for
// every position it scored, the log-probabilities of the whole vocabulary.
//
// Layout (little-endian): "STRATAKL", u32 version (1), u32 n_vocab, u32 n_ctx, u32 n_chunks;
// then the n_chunks · n_ctx token ids (u32, BOS substitution applied, as evaluated); then per
// chunk and scored position (n_ctx − 1 − n_ctx / 2 of them, see perplexity.h) n_vocab f16
// log-probabilities. f16 keeps a log-probability to 2^-11 of its size: the error it adds to a
// KL divergence is weighted by the probability, small where the token is likely.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/common/files.h"

namespace strata {

struct LogprobHeader {
  uint32_t n_vocab = 0, n_ctx = 0, n_chunks = 0;
  // Log-probability rows per chunk.
  int64_t scored_per_chunk() const { return static_cast<int64_t>(n_ctx) - 1 - n_ctx / 2; }
};

class LogprobWriter {
 public:
  // Writes the header and the tokens (n_chunks · n_ctx of them); `flag` names the option.
  LogprobWriter(const std::filesystem::path& path, std::string_view flag, const LogprobHeader& h,
                const std::vector<int32_t>& tokens);
  // The next scored position's n_vocab log-probabilities.
  void row(const float* logprobs);
  // Throws unless every row was written; then renames the file into place.
  void commit();

 private:
  OutputFile out_;
  LogprobHeader h_;
  int64_t rows_ = 0;
  std::vector<uint16_t> buf_;
};

class LogprobReader {
 public:
  // Reads and checks the header and the tokens; the file's size must be exactly what they
  // imply (a truncated or padded file is an error naming it and both sizes).
  explicit LogprobReader(const std::filesystem::path& path);
  ~LogprobReader();
  LogprobReader(const LogprobReader&) = delete;
  LogprobReader& operator=(const LogprobReader&) = delete;
  const LogprobHeader& header() const { return h_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // The next row's n_vocab log-probabilities (a read error names the file and the offset).
  void row(float* logprobs);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  LogprobHeader h_;
  std::vector<int32_t> tokens_;
  uint64_t offset_ = 0;
  std::vector<uint16_t> buf_;
};

}  // namespace strata
