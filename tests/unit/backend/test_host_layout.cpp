// The CPU's repacked weights (runtime/backend/host_layout.h): which matrices are repacked, into
// what, what stays as stored, and a request larger than the machine's DRAM refused by name.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu-kernels/tile_layout.h"
#include "runtime/backend/host_layout.h"
#include "runtime/common/error.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

TEST(HostLayout, RepacksWhatHasATiledLayoutAndLeavesTheRest) {
  const test::Mat q4 = test::make_matrix(WeightType::Q4_K, 32, 512, WeightType::F32, 1);
  const test::Mat q6 = test::make_matrix(WeightType::Q6_K, 48, 256, WeightType::F32, 2);
  const test::Mat odd = test::make_matrix(WeightType::Q4_K, 24, 256, WeightType::F32, 3);  // not whole tiles
  const test::Mat bf = test::make_matrix(WeightType::BF16, 32, 256, WeightType::F32, 4);
  Mlp m{q4.view, q6.view, odd.view};
  WeightView b = bf.view, empty = q4.view;
  empty.data = nullptr;  // a matrix the model does not have
  std::vector<WeightView*> views = {&m.w1, &m.w2, &m.w3, &b, &empty};
  const HostRepacked r = repack_for_host(views, {}, "--repack");
  EXPECT_EQ(r.matrices(), 2);
  EXPECT_GE(r.bytes(), static_cast<uint64_t>(tiled_data_bytes(q4.view) + tiled_data_bytes(q6.view)));
  EXPECT_EQ(m.w1.type, WeightType::Q4_K_T16);
  EXPECT_EQ(m.w2.type, WeightType::Q6_K_T16);
  EXPECT_EQ(m.w3.type, WeightType::Q4_K);
  EXPECT_EQ(m.w3.data, odd.view.data);
  EXPECT_EQ(b.type, WeightType::BF16);
  EXPECT_EQ(empty.data, nullptr);
  // The repacked bytes are the stored rows'.
  std::vector<uint8_t> back(q6.data.size());
  tiled_rows_to_rows(m.w2, 0, 48, back.data());
  EXPECT_EQ(back, q6.data);
}

// Q4_K's and Q2_K's blocks are whole dwords (in place); Q6_K's 210 and Q3_K's 110 bytes are padded
// to 212 and 112 (not).
TEST(HostLayout, InPlaceOnlyWhereTheLayoutFitsTheStoredBytes) {
  struct Case {
    WeightType fits, tiled, padded;
    int64_t rows, cols;
  };
  for (const Case& k : {Case{WeightType::Q4_K, WeightType::Q4_K_T16, WeightType::Q6_K, 16, 256},
                        Case{WeightType::Q2_K, WeightType::Q2_K_T16, WeightType::Q3_K, 32, 512}}) {
    SCOPED_TRACE(std::string(weight_type_name(k.fits)));
    test::Mat a = test::make_matrix(k.fits, k.rows, k.cols, WeightType::F32, 5);
    test::Mat b = test::make_matrix(k.padded, 16, 256, WeightType::F32, 6);
    const std::vector<uint8_t> stored_a = a.data, stored_b = b.data;
    Mlp m{a.view, b.view, a.view};
    m.w3.data = nullptr;
    Mlp* one[1] = {&m};
    const std::array<uint8_t*, 3> at[1] = {{a.data.data(), b.data.data(), nullptr}};
    const RepackedCount c = repack_in_place_for_host(one, at);
    EXPECT_EQ(c.matrices, 1);
    EXPECT_EQ(c.bytes, stored_a.size());
    EXPECT_EQ(m.w1.type, k.tiled);
    EXPECT_EQ(m.w2.type, k.padded) << "the padded layout is larger than its stored bytes";
    EXPECT_EQ(b.data, stored_b);
    std::vector<uint8_t> back(stored_a.size());
    tiled_rows_to_rows(m.w1, 0, k.rows, back.data());
    EXPECT_EQ(back, stored_a);
  }
}

TEST(HostLayout, MoreThanTheMachinesDramIsRefusedByName) {
  const test::Mat q4 = test::make_matrix(WeightType::Q4_K, 16, 256, WeightType::F32, 7);
  WeightView huge = q4.view;
  huge.rows = int64_t{1} << 40;  // 2^40 rows of 144 bytes: never read, refused first
  WeightView* v[1] = {&huge};
  try {
    (void)repack_for_host(v, {}, "--repack");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--repack"), std::string::npos) << what;
    EXPECT_NE(what.find("more than this machine's"), std::string::npos) << what;
  }
  EXPECT_EQ(huge.type, WeightType::Q4_K);
}

}  // namespace
}  // namespace strata
