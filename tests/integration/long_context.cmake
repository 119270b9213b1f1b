# Correctness at a 64k-token context (tests/integration/long_context_test.cc): sliced prefill
# with herd's KV layout against one forward with full KV; bf16 / fp8 KV against f32 KV.
add_executable(test_long_context ${CMAKE_CURRENT_SOURCE_DIR}/long_context_test.cc)
target_link_libraries(test_long_context PRIVATE herd_lib GTest::gtest_main)
target_include_directories(test_long_context PRIVATE ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME long_context COMMAND test_long_context)
set_tests_properties(long_context PROPERTIES LABELS "slow;integration;runtime" TIMEOUT 900)
