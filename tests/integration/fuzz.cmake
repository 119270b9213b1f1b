# The libFuzzer targets (tests/fuzz/fuzz_*.cc), one per parser of outside input: requests,
# images, GGUF, safetensors (+ index), config.json and the tokenizer loaders. Each is built with
# clang apart from the gcc build (once, by the fuzz_build fixture: the targets share most of
# their objects), then each runs on a copy of its seed corpus: the request and image parsers
# for 60 s, as the server and vision issues ask, the file parsers for HERD_FUZZ_SECONDS.
# Skipped (not failed) when clang++ is missing. Long runs: `bash tests/fuzz/run.sh . DIR SECS T`.
set(HERD_FUZZ_SECONDS 30 CACHE STRING "Seconds each file-parser fuzz target fuzzes for in ctest")
find_program(HERD_CLANGXX clang++)
if(HERD_CLANGXX)
  set(fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz-bin)
  add_test(NAME fuzz_build COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/build.sh
                                   ${CMAKE_SOURCE_DIR} ${fuzz_bin} all)
  set_tests_properties(fuzz_build PROPERTIES LABELS "fuzz" TIMEOUT 1800 FIXTURES_SETUP fuzz_bins
                                              COST 1000)
  foreach(target_labels IN ITEMS "request|server|60" "image|vision|60" "gguf|io"
                                 "safetensors|io" "config|model" "tokenizer|tokenizer")
    string(REPLACE "|" ";" parts "${target_labels}")
    list(GET parts 0 target)
    list(GET parts 1 area)
    list(LENGTH parts n)
    set(secs ${HERD_FUZZ_SECONDS})
    if(n GREATER 2)
      list(GET parts 2 secs)
    endif()
    add_test(NAME fuzz_${target}
             COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh ${CMAKE_SOURCE_DIR}
                     ${CMAKE_CURRENT_BINARY_DIR}/fuzz-${target} ${secs} ${target} ${fuzz_bin})
    set_tests_properties(fuzz_${target} PROPERTIES LABELS "fuzz;${area}" TIMEOUT 900
                                                   FIXTURES_REQUIRED fuzz_bins)
  endforeach()
endif()
