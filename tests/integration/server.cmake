# Server integration test: `herd serve` with a synthetic model, driven by the official openai
# npm client (responses, streaming, stop, n, logprobs, tools, errors, concurrency, drain).
# Needs node and tools/openai-client installed (tools/install-references.sh); fails without.
add_test(NAME server_openai_client
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/server/openai_client.sh $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/server-openai)
set_tests_properties(server_openai_client PROPERTIES LABELS "server;integration" TIMEOUT 300)

# usage.prompt_tokens equals the official chat template's token count (Jinja2 + the real
# tokenizer from ../shared/llama4) for system, multi-turn, content parts and tools.
add_test(NAME server_prompt_tokens
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/server/prompt_tokens_test.py $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR}/../shared/llama4 ${CMAKE_CURRENT_BINARY_DIR}/server-prompt-tokens)
set_tests_properties(server_prompt_tokens PROPERTIES LABELS "server;integration" TIMEOUT 300)


# Load test, loopback only, bounded to about a minute: sustained requests with random client
# disconnects; afterwards no active sequence, no KV page in use, RSS outside the KV pools within
# warm-up + 5%.
add_test(NAME server_soak
         COMMAND bash -c "[ -d ${CMAKE_SOURCE_DIR}/tools/openai-client/node_modules/openai ] || { echo 'FAIL: tools/openai-client not installed'; exit 1; }; mkdir -p ${CMAKE_CURRENT_BINARY_DIR}/server-soak && { [ -f ${CMAKE_CURRENT_BINARY_DIR}/server-soak/tiny/config.json ] || $<TARGET_FILE:herd> synth --preset tiny -o ${CMAKE_CURRENT_BINARY_DIR}/server-soak/tiny >/dev/null; } && node ${CMAKE_SOURCE_DIR}/tools/openai-client/soak.mjs $<TARGET_FILE:herd> ${CMAKE_CURRENT_BINARY_DIR}/server-soak/tiny 50 8")
set_tests_properties(server_soak PROPERTIES LABELS "server;integration;slow" TIMEOUT 240
                                             COST 150)
if(HERD_SANITIZE)
  set_tests_properties(server_soak PROPERTIES ENVIRONMENT HERD_SOAK_SANITIZED=1)
endif()
