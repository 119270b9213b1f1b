// SwiGLU and the top-1 sigmoid router (spec §3.2) against hand values.
#include <gtest/gtest.h>

#include <vector>

#include "herd/ops/activation.h"

namespace herd {
namespace {

TEST(Swiglu, HandValues) {
  // silu(g)·u with silu(g) = g / (1 + e^-g).
  std::vector<float> gate = {0, 1, -1, 2}, up = {1, 2, 3, -0.5f}, out(4);
  swiglu(gate.data(), up.data(), out.data(), 4);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 1.4621171572600098, 1e-6);
  EXPECT_NEAR(out[2], -0.8068242641099853, 1e-6);
  EXPECT_NEAR(out[3], -0.8807970779778823, 1e-6);
  swiglu(gate.data(), up.data(), gate.data(), 4);  // out may alias gate
  EXPECT_EQ(gate, out);
}

TEST(RouterTop1, ArgmaxAndSigmoidOfRawLogit) {
  const float logits[] = {0.5f, 2.0f, -1.0f, 1.5f};
  const RouterChoice c = router_top1(logits, 4);
  EXPECT_EQ(c.expert, 1);
  EXPECT_NEAR(c.weight, 0.8807970779778823, 1e-7);  // sigmoid(2), not softmax
}

TEST(RouterTop1, TiesPickFirst) {
  const float logits[] = {-3.0f, 0.5f, 0.5f, 0.5f};
  const RouterChoice c = router_top1(logits, 4);
  EXPECT_EQ(c.expert, 1);
  EXPECT_NEAR(c.weight, 0.6224593312018546, 1e-7);
}

TEST(RouterTop1, AllNegativeAndSingle) {
  const float neg[] = {-4.0f, -2.0f, -3.0f};
  const RouterChoice c = router_top1(neg, 3);
  EXPECT_EQ(c.expert, 1);
  EXPECT_NEAR(c.weight, 1.0 / (1.0 + std::exp(2.0)), 1e-7);
  const float zero[] = {0.0f};
  EXPECT_EQ(router_top1(zero, 1).weight, 0.5f);
}

}  // namespace
}  // namespace herd
