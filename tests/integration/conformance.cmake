# herd vs llama.cpp (node-llama-cpp prebuilt, pinned in tools/llama-cpp-ref): synthesize, export
# GGUF, compare logits and greedy continuations (tools/llama-cpp-ref/conformance.mjs). One test
# per case so they run in parallel. It fails, never skips, when node or the reference is missing:
# `make test` installs the reference first (tools/install-references.sh).
find_program(HERD_NODE node)
foreach(case tiny interleaved long)
  if(HERD_NODE)
    add_test(NAME conformance_llama_cpp_${case}
             COMMAND ${HERD_NODE} ${CMAKE_SOURCE_DIR}/tools/llama-cpp-ref/conformance.mjs
                     --herd $<TARGET_FILE:herd> --work ${CMAKE_CURRENT_BINARY_DIR}/conformance
                     --case ${case})
  else()
    add_test(NAME conformance_llama_cpp_${case}
             COMMAND sh -c "echo 'conformance: node not found (apt-get install nodejs)'; exit 1")
  endif()
  set_tests_properties(conformance_llama_cpp_${case} PROPERTIES LABELS "conformance;integration"
                       TIMEOUT 900)
endforeach()
