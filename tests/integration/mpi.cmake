# Issue 16: expert parallelism over Open MPI (tests/integration/mpi_cli.sh), in MPI builds only.
if(HERD_MPI)
  add_test(NAME mpi_cli COMMAND ${CMAKE_CURRENT_LIST_DIR}/mpi_cli.sh $<TARGET_FILE:herd>
                                ${MPIEXEC_EXECUTABLE})
  set_tests_properties(mpi_cli PROPERTIES LABELS "mpi;integration" TIMEOUT 900 RUN_SERIAL TRUE)
  if(HERD_SANITIZE)
    # Open MPI's own allocations from MPI_Init are never freed (lsan_openmpi.supp says why).
    set_tests_properties(
      mpi_cli PROPERTIES ENVIRONMENT
      "ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan_openmpi.supp")
  endif()
endif()
