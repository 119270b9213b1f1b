# `herd perplexity` on the committed trained model (tests/integration/perplexity_cli.sh).
add_test(NAME perplexity_cli
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/perplexity_cli.sh $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR}/models/default)
set_tests_properties(perplexity_cli PROPERTIES LABELS "integration" TIMEOUT 300)

# Issue 14: herd's f32 perplexity equals llama.cpp's (node-llama-cpp prebuilt) on the same
# weights as an F32 GGUF (tests/integration/perplexity_llama_cpp.sh explains the 30-token windows).
find_program(HERD_NODE node)
add_test(NAME perplexity_llama_cpp
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/perplexity_llama_cpp.sh $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR}/models/default ${HERD_NODE}
                 ${CMAKE_SOURCE_DIR}/tools/llama-cpp-ref)
set_tests_properties(perplexity_llama_cpp PROPERTIES LABELS "conformance;integration"
                                                     TIMEOUT 600 COST 150)

# Issue 14: herd's Q8_0 / Q4_0 (--quant q8_0 / q4_0) against llama-quantize's on the same weights,
# through llama.cpp: herd's mean KL is not larger (tests/integration/quant_quality_llama_cpp.sh).
add_test(NAME quant_quality_llama_cpp
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/quant_quality_llama_cpp.sh $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR}/models/default ${HERD_NODE}
                 ${CMAKE_SOURCE_DIR}/tools/llama-cpp-ref
                 ${HERD_LLAMA_CPP_BIN}/llama-quantize)
set_tests_properties(quant_quality_llama_cpp PROPERTIES LABELS "conformance;integration"
                                                        TIMEOUT 600 COST 300)
