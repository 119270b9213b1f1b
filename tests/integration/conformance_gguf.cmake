# herd reading a GGUF vs llama.cpp reading the same file (tools/llama-cpp-ref/conformance_gguf.mjs):
# one test per GGUF type. f32 / bf16 are written by `herd export-gguf`; the quantized types are
# the F32 export requantized by llama.cpp's llama-quantize (bench/build_llama_cpp.sh builds it).
# Tolerances per type, with their reasons, are in the script (CRITERIA).
set(HERD_GGUF_CONFORMANCE_TYPES "f32;bf16;q8_0;q4_0;q4_k_m;q6_k;q3_k_m;q2_k;iq4_xs;iq4_nl"
    CACHE STRING
    "GGUF types compared with llama.cpp (f32 bf16 q8_0 q4_0 q4_k_m q6_k q3_k_m q2_k iq4_xs iq4_nl)")
find_program(HERD_NODE node)
foreach(type ${HERD_GGUF_CONFORMANCE_TYPES})
  set(name conformance_gguf_${type})
  if(HERD_NODE)
    add_test(NAME ${name}
             COMMAND ${HERD_NODE} ${CMAKE_SOURCE_DIR}/tools/llama-cpp-ref/conformance_gguf.mjs
                     --herd $<TARGET_FILE:herd> --work ${CMAKE_CURRENT_BINARY_DIR}/conformance_gguf
                     --quantize ${HERD_LLAMA_CPP_BIN}/llama-quantize --type ${type})
  else()
    add_test(NAME ${name}
             COMMAND sh -c "echo 'conformance_gguf: node not found (apt-get install nodejs)'; exit 1")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "conformance;integration" TIMEOUT 900)
endforeach()

# The same comparison on the trained model (models/default) and its held-out text, where the
# issue's top-1 agreement (99.5%) is meaningful (tests/integration/conformance_gguf_trained.sh:
# criteria and measured values).
foreach(type bf16 q8_0 q4_0 q4_k_m q5_k_m q6_k q3_k_m q2_k iq4_xs iq4_nl)
  set(name conformance_gguf_trained_${type})
  if(HERD_NODE)
    add_test(NAME ${name}
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/conformance_gguf_trained.sh $<TARGET_FILE:herd>
                     ${CMAKE_SOURCE_DIR}/models/default ${HERD_NODE}
                     ${CMAKE_SOURCE_DIR}/tools/llama-cpp-ref
                     ${HERD_LLAMA_CPP_BIN}/llama-quantize
                     ${type})
  else()
    add_test(NAME ${name}
             COMMAND sh -c "echo 'conformance_gguf_trained: node not found (apt-get install nodejs)'; exit 1")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "conformance;integration" TIMEOUT 600
                                           COST 200)
endforeach()
