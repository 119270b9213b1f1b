# Correctness at a 64k-token context (tests/integration/long_context_test.cc): sliced prefill
# with herd's KV layout against one forward with full KV; bf16 / fp8 KV against f32 KV.
add_executable(test_long_context ${CMAKE_CURRENT_SOURCE_DIR}/long_context_test.cc)
target_link_libraries(test_long_context PRIVATE herd_lib GTest::gtest_main)
target_include_directories(test_long_context PRIVATE ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME long_context COMMAND test_long_context)
# Without AVX2 the fast attention falls back to the reference, one query at a time (on a Zen 1
# before attention had AVX2 kernels, the second case alone ran past 900 s; since, 252 s on a Zen 3).
# Such machines get a longer limit.
set(herd_long_context_limit 900)
if(EXISTS /proc/cpuinfo)
  file(STRINGS /proc/cpuinfo herd_cpu_flags REGEX "^flags" LIMIT_COUNT 1)
  if(NOT herd_cpu_flags MATCHES " avx2 ")
    set(herd_long_context_limit 3600)
  endif()
endif()
set_tests_properties(long_context PROPERTIES LABELS "slow;integration;runtime"
                                             TIMEOUT ${herd_long_context_limit} COST 800)

# `herd plan --json` carries the fields the issue names, with the arithmetic's invariants.
add_test(NAME plan_cli
         COMMAND sh -c "$<TARGET_FILE:herd> plan -m scout --quant int4 --gpu h100 --count 1 --json | python3 -c \"import json,sys; j=json.load(sys.stdin); h=j['herd']; f=j['full_kv']; assert j['fits'] is True and j['weights_bytes'] > 60e9, j; assert h['max_context_tokens'] > f['max_context_tokens'] > 0, j; assert h['kv_fixed_bytes'] > 0 and f['kv_bytes_per_token'] == 48*4096 and h['kv_bytes_per_token'] == 12*4096+8, j; print('ok')\"")
set_tests_properties(plan_cli PROPERTIES LABELS "integration;input" TIMEOUT 60)
