# Bad-input checks of issue 17 (tests/integration/input_cli.sh): every flag's bad values, every
# config.json field's bad values, the issue's reproducers as a corpus, special files in every
# file position. Each must end in one "herd: error:" line and exit 1, never a signal or a hang.
# Cheap, so they run under ASan with the unit tests.
foreach(case flags config corpus special_files)
  add_test(NAME input_cli_${case}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/input_cli.sh $<TARGET_FILE:herd> ${case})
  set_tests_properties(input_cli_${case} PROPERTIES LABELS "unit;input" TIMEOUT 600)
endforeach()
