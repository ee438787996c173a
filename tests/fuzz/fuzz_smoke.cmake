# fuzz_smoke.cmake — `cmake -P` script behind the fuzz_smoke CTest.
#
# Fuzzes for SECONDS over a corpus of its own, WORK/corpus: the seeds and
# the kept corpus (tests/fuzz/corpus, what earlier fuzzing found, merged
# with -merge=1) are copied in, as libFuzzer adds to the corpus it is
# given, and what earlier runs in this build tree found stays.  A crash,
# leak or timeout fails the test; its reproducer is left in WORK/artifacts/.
# Each run's executions and the corpus size are printed in one line, and
# appended to WORK/history.tsv with the total so far.
#   -DFUZZER=... -DSEEDS=... -DCORPUS=... -DDICT=... -DWORK=... -DSECONDS=60
foreach(v FUZZER SEEDS CORPUS DICT WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "fuzz_smoke.cmake: -D${v}= is required")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${SEEDS}/* ${CORPUS}/*)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
file(GLOB before ${WORK}/corpus/*)
list(LENGTH before n_before)

execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048
          -dict=${DICT} -artifact_prefix=${WORK}/artifacts/ -print_final_stats=1
          ${WORK}/corpus
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK}/artifacts/*)
  get_filename_component(name ${FUZZER} NAME)
  message(FATAL_ERROR "${name} exited with ${rc}; reproducers: ${found}\n"
                      "copy each into tests/fuzz/regressions/ and replay it with fuzz_replay")
endif()

string(REGEX MATCH "stat::number_of_executed_units: *([0-9]+)" _ "${out}")
set(runs ${CMAKE_MATCH_1})
file(GLOB after ${WORK}/corpus/*)
list(LENGTH after n_after)
set(total ${runs})
if(EXISTS ${WORK}/history.tsv)
  file(STRINGS ${WORK}/history.tsv lines)
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9]+\t([0-9]+)\t")
      math(EXPR total "${total} + ${CMAKE_MATCH_1}")
    endif()
  endforeach()
endif()
string(TIMESTAMP now "%s" UTC)
file(APPEND ${WORK}/history.tsv "${now}\t${runs}\t${SECONDS}\t${n_after}\n")
get_filename_component(name ${FUZZER} NAME)
message("${name}: ${runs} executions in ${SECONDS} s; corpus ${n_before} -> ${n_after} inputs, kept in "
        "${WORK}/corpus; ${total} executions in this build tree so far")
