# fuzz_smoke.cmake — `cmake -P` script behind the fuzz_smoke CTest.
#
# Copies the seeds into a scratch corpus (libFuzzer adds to the corpus it is
# given, and seeds/ is in git), then fuzzes for SECONDS.  A crash, leak or
# timeout fails the test; its reproducer is left in WORK/artifacts/.
#   -DFUZZER=... -DSEEDS=... -DDICT=... -DWORK=... -DSECONDS=60
foreach(v FUZZER SEEDS DICT WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "fuzz_smoke.cmake: -D${v}= is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK}/corpus)
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${SEEDS}/*)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)

execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048
          -dict=${DICT} -artifact_prefix=${WORK}/artifacts/ -print_final_stats=1
          ${WORK}/corpus
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK}/artifacts/*)
  message(FATAL_ERROR "fuzz_ingest exited with ${rc}; reproducers: ${found}\n"
                      "copy each into tests/fuzz/regressions/ and replay it with fuzz_replay")
endif()
