# `herd perplexity` on the committed trained model (tests/integration/perplexity_cli.sh).
add_test(NAME perplexity_cli
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/perplexity_cli.sh $<TARGET_FILE:herd>
                 ${CMAKE_SOURCE_DIR}/models/default)
set_tests_properties(perplexity_cli PROPERTIES LABELS "integration" TIMEOUT 300)
