# Issue 15: herd's GGUF block formats against llama.cpp's ggml (gguf_ggml_conformance.cc), linked
# against the libggml-base / libggml-cpu that bench/build_llama_cpp.sh builds (`make test` runs it
# first). Without that build the test is not built, and configure says so.
set(HERD_GGML_LIB_DIRS ${HERD_LLAMA_CPP_BIN})  # tests/integration/CMakeLists.txt
set(HERD_GGML_INC_DIRS ${HERD_LLAMA_CPP_DIR}/src/ggml/include)
# A cached result from another CPU's build (the CPU behind a build directory can change) is found
# again here.
foreach(v HERD_GGML_BASE HERD_GGML_CPU HERD_GGML_INCLUDE)
  if(${v})
    string(FIND "${${v}}" "${HERD_LLAMA_CPP_DIR}/" at)
    if(NOT at EQUAL 0)
      unset(${v} CACHE)
    endif()
  endif()
endforeach()
find_library(HERD_GGML_BASE ggml-base PATHS ${HERD_GGML_LIB_DIRS} NO_DEFAULT_PATH)
find_library(HERD_GGML_CPU ggml-cpu PATHS ${HERD_GGML_LIB_DIRS} NO_DEFAULT_PATH)
find_path(HERD_GGML_INCLUDE ggml-cpu.h PATHS ${HERD_GGML_INC_DIRS} NO_DEFAULT_PATH)
if(HERD_GGML_BASE AND HERD_GGML_CPU AND HERD_GGML_INCLUDE)
  add_executable(gguf_ggml_conformance ${CMAKE_CURRENT_LIST_DIR}/gguf_ggml_conformance.cc)
  target_include_directories(gguf_ggml_conformance PRIVATE ${HERD_GGML_INCLUDE})
  target_link_libraries(gguf_ggml_conformance PRIVATE herd_lib GTest::gtest_main ${HERD_GGML_BASE}
                                                      ${HERD_GGML_CPU})
  add_test(NAME gguf_ggml_conformance COMMAND gguf_ggml_conformance)
  set_tests_properties(gguf_ggml_conformance PROPERTIES LABELS "conformance;integration"
                                                        TIMEOUT 300)
else()
  message(STATUS "gguf_ggml_conformance not built: no llama.cpp build (bench/build_llama_cpp.sh)")
endif()
if(HERD_GGML_BASE AND HERD_GGML_CPU AND HERD_GGML_INCLUDE)
  # Not a test: the kernel speed comparison with ggml on the same rows (BENCHMARKS.md).
  add_executable(bench_gguf_vs_ggml ${CMAKE_SOURCE_DIR}/bench/gguf_vs_ggml.cc)
  target_include_directories(bench_gguf_vs_ggml PRIVATE ${HERD_GGML_INCLUDE})
  target_link_libraries(bench_gguf_vs_ggml PRIVATE herd_lib ${HERD_GGML_BASE} ${HERD_GGML_CPU})
endif()
