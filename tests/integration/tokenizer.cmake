# Tokenizer integration tests: conformance with js-tiktoken and @huggingface/tokenizers on a
# generated corpus, and the chat template against Jinja2. They need node (with the references
# installed by tools/install-references.sh) and python3-jinja2, and fail when those are missing.
add_executable(tokenizer_tool ${CMAKE_CURRENT_LIST_DIR}/tokenizer/tokenizer_tool.cc)
target_link_libraries(tokenizer_tool PRIVATE herd_lib)

set(HERD_TOKENIZER_TEST_DIR ${CMAKE_CURRENT_LIST_DIR}/tokenizer)
add_test(NAME tokenizer_conformance_tiktoken
         COMMAND bash ${HERD_TOKENIZER_TEST_DIR}/conformance.sh $<TARGET_FILE:herd>
                 $<TARGET_FILE:tokenizer_tool> ${CMAKE_SOURCE_DIR}/../shared/llama4
                 ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tokenizer-conformance)
set_tests_properties(tokenizer_conformance_tiktoken PROPERTIES LABELS "tokenizer;conformance"
                     TIMEOUT 600 COST 150)

# The chat template rendered by Jinja2 (Debian's python3-jinja2, hence /usr/bin/python3) must
# equal herd's renderer byte for byte; prompt_format.md's worked examples too.
add_test(NAME tokenizer_chat_template
         COMMAND /usr/bin/python3 ${HERD_TOKENIZER_TEST_DIR}/chat_template_test.py
                 $<TARGET_FILE:tokenizer_tool> ${CMAKE_SOURCE_DIR}/../shared/llama4)
set_tests_properties(tokenizer_chat_template PROPERTIES LABELS "tokenizer;conformance" TIMEOUT 120)
