# herd vs llama.cpp (node-llama-cpp prebuilt, pinned in tools/llama-cpp-ref): synthesize, export
# GGUF, compare logits, greedy continuations and expert coverage
# (tools/llama-cpp-ref/conformance.mjs). One test per case so they run in parallel. It fails,
# never skips, when node or the reference is missing: `make test` installs the reference first
# (tools/install-references.sh).
#   tiny              sharded checkpoint; 48-token prompt + 8400-token prompt (slow)
#   tiny-interleaved  single-file checkpoint, 128 experts; 48 + 8400 tokens (slow)
#   small             real 202048 vocabulary, Meta's tokenizer copied in; prompts <= 64 tokens
# The small case reads the tokenizer from HERD_LLAMA4_TOKENIZER_DIR (herd itself then only uses
# the copy in the synthesized model directory).
set(HERD_LLAMA4_TOKENIZER_DIR "/work/shared/llama4" CACHE PATH
    "Directory with Meta's Llama 4 tokenizer.model, for the real-vocabulary conformance case")
find_program(HERD_NODE node)
foreach(case tiny tiny-interleaved small)
  set(name conformance_llama_cpp_${case})
  if(HERD_NODE)
    add_test(NAME ${name}
             COMMAND ${HERD_NODE} ${CMAKE_SOURCE_DIR}/tools/llama-cpp-ref/conformance.mjs
                     --herd $<TARGET_FILE:herd> --work ${CMAKE_CURRENT_BINARY_DIR}/conformance
                     --tokenizer ${HERD_LLAMA4_TOKENIZER_DIR} --case ${case})
  else()
    add_test(NAME ${name}
             COMMAND sh -c "echo 'conformance: node not found (apt-get install nodejs)'; exit 1")
  endif()
  set(labels "conformance;integration")
  if(case MATCHES "^tiny")
    list(APPEND labels slow)  # the 8400-token prompt
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 900 COST 300)
endforeach()
