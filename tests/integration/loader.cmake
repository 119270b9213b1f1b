# CLI loader checks (tests/integration/loader_cli.sh): clean errors on broken model directories,
# parameter totals on config-only directories. Cheap, so they run under ASan with the unit tests.
foreach(case synth_and_info truncated_shard garbage_shard missing_shard missing_config bad_config
             scout_config_only maverick_config_only)
  add_test(NAME loader_cli_${case}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/loader_cli.sh $<TARGET_FILE:herd> ${case})
  set_tests_properties(loader_cli_${case} PROPERTIES LABELS "unit;loader" TIMEOUT 120)
endforeach()
