# The request fuzz target (tests/fuzz/): built with clang apart from the gcc build, then run for
# HERD_FUZZ_SECONDS on the seed corpus. Skipped (not failed) when clang++ is missing.
set(HERD_FUZZ_SECONDS 60 CACHE STRING "Seconds `ctest -R fuzz_request` fuzzes for")
find_program(HERD_CLANGXX clang++)
if(HERD_CLANGXX)
  add_test(NAME fuzz_request
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh ${CMAKE_SOURCE_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/fuzz ${HERD_FUZZ_SECONDS})
  set_tests_properties(fuzz_request PROPERTIES LABELS "fuzz;server" TIMEOUT 900)
endif()

# The image fuzz target (decode + preprocess, tests/fuzz/fuzz_image.cc), the same way.
if(HERD_CLANGXX)
  add_test(NAME fuzz_image
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh ${CMAKE_SOURCE_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/fuzz-image ${HERD_FUZZ_SECONDS} image)
  set_tests_properties(fuzz_image PROPERTIES LABELS "fuzz;vision" TIMEOUT 900)
endif()
