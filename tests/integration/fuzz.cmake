# The libFuzzer targets (tests/fuzz/fuzz_*.cc), one per parser of outside input: requests,
# images, GGUF, safetensors (+ index), config.json and the tokenizer loaders. Each is built with
# clang apart from the gcc build, then run for HERD_FUZZ_SECONDS on a copy of its seed corpus.
# Skipped (not failed) when clang++ is missing. Long runs: `bash tests/fuzz/run.sh . DIR SECS T`.
set(HERD_FUZZ_SECONDS 30 CACHE STRING "Seconds each `ctest -L fuzz` target fuzzes for")
find_program(HERD_CLANGXX clang++)
if(HERD_CLANGXX)
  foreach(target_labels IN ITEMS "request|server" "image|vision" "gguf|io" "safetensors|io"
                                 "config|model" "tokenizer|tokenizer")
    string(REPLACE "|" ";" parts "${target_labels}")
    list(GET parts 0 target)
    list(GET parts 1 area)
    add_test(NAME fuzz_${target}
             COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh ${CMAKE_SOURCE_DIR}
                     ${CMAKE_CURRENT_BINARY_DIR}/fuzz-${target} ${HERD_FUZZ_SECONDS} ${target})
    set_tests_properties(fuzz_${target} PROPERTIES LABELS "fuzz;${area}" TIMEOUT 900)
  endforeach()
endif()
