# Server integration test: `herd serve` with a synthetic model, driven by the official openai
# npm client (responses, streaming, stop, n, logprobs, tools, errors, concurrency, drain).
# Needs node and tools/openai-client installed (tools/install-references.sh); fails without.
add_test(NAME server_openai_client
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/server/openai_client.sh $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/server-openai)
set_tests_properties(server_openai_client PROPERTIES LABELS "server;integration" TIMEOUT 300)
