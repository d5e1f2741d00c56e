#include "runtime/generate/logprob_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "cpu-kernels/float_formats.h"
#include "runtime/common/error.h"

namespace strata {
namespace {

constexpr char kMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'K', 'L'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 8 + 4 * 4;

uint64_t rows_bytes(const LogprobHeader& h) {
  return static_cast<uint64_t>(h.n_chunks) * static_cast<uint64_t>(h.scored_per_chunk()) * h.n_vocab * 2;
}

}  // namespace

LogprobWriter::LogprobWriter(const std::filesystem::path& path, std::string_view flag, const LogprobHeader& h,
                             const std::vector<int32_t>& tokens)
    : out_(path, flag), h_(h), buf_(h.n_vocab) {
  if (tokens.size() != static_cast<size_t>(h.n_chunks) * h.n_ctx)
    throw Error(path.string() + ": " + std::to_string(tokens.size()) + " tokens for " + std::to_string(h.n_chunks) +
                " chunks of " + std::to_string(h.n_ctx));
  const uint32_t head[4] = {kVersion, h.n_vocab, h.n_ctx, h.n_chunks};
  out_.write(kMagic, sizeof kMagic);
  out_.write(head, sizeof head);
  std::vector<uint32_t> ids(tokens.begin(), tokens.end());
  out_.write(ids.data(), ids.size() * 4);
}

void LogprobWriter::row(const float* logprobs) {
  // Clamped to f16's lowest (a probability that underflowed to 0 has log -inf).
  for (uint32_t v = 0; v < h_.n_vocab; ++v) buf_[v] = f32_to_f16(std::max(logprobs[v], -65504.0f));
  out_.write(buf_.data(), buf_.size() * 2);
  ++rows_;
}

void LogprobWriter::commit() {
  const int64_t want = static_cast<int64_t>(h_.n_chunks) * h_.scored_per_chunk();
  if (rows_ != want)
    throw Error(out_.path().string() + ": " + std::to_string(rows_) + " of " + std::to_string(want) +
                " log-probability rows written");
  out_.commit();
}

LogprobReader::LogprobReader(const std::filesystem::path& path) : path_(path) {
  fd_ = open_input_file(path, "KL-divergence base file");
  auto read_at = [&](void* dst, uint64_t n, uint64_t at) {
    uint64_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, static_cast<char*>(dst) + done, n - done, static_cast<off_t>(at + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw Error(path_.string() + ": read failed at offset " + std::to_string(at + done) + ": " + std::strerror(errno));
      if (r == 0) throw Error(path_.string() + ": ends at offset " + std::to_string(at + done) + " inside the header");
      done += static_cast<uint64_t>(r);
    }
  };
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw Error(path_.string() + ": cannot stat: " + std::strerror(errno));
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes)
    throw Error(path_.string() + ": " + std::to_string(size) + " bytes, shorter than the " +
                std::to_string(kHeaderBytes) + "-byte header of a KL-divergence base file");
  char magic[8];
  uint32_t head[4];
  read_at(magic, 8, 0);
  read_at(head, sizeof head, 8);
  if (std::memcmp(magic, kMagic, 8) != 0)
    throw Error(path_.string() + ": not a KL-divergence base file (it does not start with STRATAKL; write one with "
                                 "`strata perplexity --kl-divergence-base FILE`)");
  if (head[0] != kVersion)
    throw Error(path_.string() + ": version " + std::to_string(head[0]) + " at offset 8; this strata reads version " +
                std::to_string(kVersion));
  h_ = {head[1], head[2], head[3]};
  if (h_.n_vocab == 0 || h_.n_vocab > (1u << 24))
    throw Error(path_.string() + ": n_vocab " + std::to_string(h_.n_vocab) + " at offset 12 is not a vocabulary size");
  if (h_.n_ctx < 4 || h_.n_ctx > (1u << 24))
    throw Error(path_.string() + ": n_ctx " + std::to_string(h_.n_ctx) + " at offset 16 is outside [4, 2^24]");
  if (h_.n_chunks == 0 || h_.n_chunks > (1u << 24))
    throw Error(path_.string() + ": n_chunks " + std::to_string(h_.n_chunks) + " at offset 20 is outside [1, 2^24]");
  const uint64_t token_bytes = static_cast<uint64_t>(h_.n_chunks) * h_.n_ctx * 4;
  const uint64_t want = kHeaderBytes + token_bytes + rows_bytes(h_);
  if (size != want)
    throw Error(path_.string() + ": " + std::to_string(size) + " bytes where its header (" + std::to_string(h_.n_chunks) +
                " chunks of " + std::to_string(h_.n_ctx) + " tokens, vocabulary " + std::to_string(h_.n_vocab) +
                ") implies " + std::to_string(want) + (size < want ? ": truncated" : ": trailing bytes"));
  std::vector<uint32_t> ids(static_cast<size_t>(h_.n_chunks) * h_.n_ctx);
  read_at(ids.data(), token_bytes, kHeaderBytes);
  tokens_.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= h_.n_vocab)
      throw Error(path_.string() + ": token " + std::to_string(ids[i]) + " at offset " +
                  std::to_string(kHeaderBytes + 4 * i) + " is outside the vocabulary of " + std::to_string(h_.n_vocab));
    tokens_.push_back(static_cast<int32_t>(ids[i]));
  }
  offset_ = kHeaderBytes + token_bytes;
  buf_.resize(h_.n_vocab);
}

LogprobReader::~LogprobReader() {
  if (fd_ >= 0) ::close(fd_);
}

void LogprobReader::row(float* logprobs) {
  const uint64_t n = static_cast<uint64_t>(h_.n_vocab) * 2;
  uint64_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, reinterpret_cast<char*>(buf_.data()) + done, n - done, static_cast<off_t>(offset_ + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      throw Error(path_.string() + ": read failed at offset " + std::to_string(offset_ + done) + ": " +
                  (r < 0 ? std::strerror(errno) : "the file ended (it changed while being read)"));
    done += static_cast<uint64_t>(r);
  }
  for (uint32_t v = 0; v < h_.n_vocab; ++v) {
    logprobs[v] = f16_to_f32(buf_[v]);
    // Log-probabilities are finite (a base run writes them clamped): NaN or -inf is a damaged file.
    if (!std::isfinite(logprobs[v]))
      throw Error(path_.string() + ": log-probability " + std::to_string(logprobs[v]) + " at offset " +
                  std::to_string(offset_ + 2 * uint64_t{v}) + " is not a finite number: the file is damaged");
  }
  offset_ += n;
}

}  // namespace strata
