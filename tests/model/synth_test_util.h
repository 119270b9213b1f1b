// Shared by the model tests: fresh temp dirs and synthesized checkpoints.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "herd/model/synth.h"

namespace herd::testutil {

inline std::string fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path d = std::filesystem::path(::testing::TempDir()) /
                            ("herd_" + std::string(info->test_suite_name()) + "_" + info->name() +
                             "_" + tag + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

inline std::string synth_dir(const std::string& tag, SynthOptions o) {
  o.out_dir = fresh_dir(tag);
  Status s = synth_model(o);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return o.out_dir;
}

}  // namespace herd::testutil
