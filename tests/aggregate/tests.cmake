# Aggregate tests: the whole engine (`dmarcpipe run`) end to end, and its C
# interface through Check.
#
# include()d from tests/CMakeLists.txt after the dmarcpipe and dp-gen-report
# targets exist.  Paths use CMAKE_CURRENT_LIST_DIR, so they hold wherever
# this file is included from.  Every test carries the label `aggregate`;
# the threaded ones also carry `tsan`, which tests/run-all runs in the
# ThreadSanitizer build (build-tsan).
#
#   aggregate_engine       (Check) dp_engine_run into an in-memory sink, a
#                          failing sink, dp_dedup, CSV/JSON rollup formatting
#   aggregate_equivalence  workers {1,2,4} x shards {1,3,8}, windows 1d/1h:
#                          identical rollups, reports feed, summary, quarantine
#   aggregate_independent  sums against expected.py (from `dmarcpipe parse`),
#                          and a crafted two-day report's exact window shares
#   aggregate_flush        --max-keys 1/5 and --flush-interval 1: partial
#                          rollups merge to the unflushed run
#   aggregate_dedup        --state across runs; .xml/.xml.gz/.zip copies;
#                          conflicting copies: the first in input order counts
#   aggregate_atomic       a report counts whole or not at all
#   aggregate_mixed        randomized (fixed seeds): good, duplicate and failing
#                          reports mixed, in random worker/shard/batch/ring/
#                          max-keys configurations, against a good-only run
#                          and rollups computed in Python
#   aggregate_csv          the CSV sink carries the NDJSON rows
#   aggregate_dkim_pick    the DKIM result a rollup carries: the first aligned
#                          in relaxed mode (Public Suffix List), else the first
#   aggregate_readahead    --readahead on (a reader thread per big report) gives
#                          output identical to off, errors and hashes included
#   aggregate_follow       --follow: a spool fed in waves, a file written
#                          slowly in place, duplicates, SIGTERM; --done;
#                          restarts without --done; its own folders under
#                          the SOURCE; merged rollups = a batch run's
#   aggregate_stress       4 workers, 3 shards, 2-slot rings, 1-item batches
#                          against 1x1, over the corpus and 300 generated
#                          reports (also labelled tsan)
find_package(Python3 3.8 COMPONENTS Interpreter)

if(NOT Python3_Interpreter_FOUND)
  message(STATUS "aggregate tests disabled: no Python 3 interpreter")
  return()
endif()
if(NOT TARGET dmarcpipe OR NOT TARGET dp-gen-report)
  message(STATUS "aggregate tests not added: no dmarcpipe or dp-gen-report target yet")
  return()
endif()

set(DP_AGG_DIR ${CMAKE_CURRENT_LIST_DIR})
set(DP_AGG_CORPUS ${CMAKE_SOURCE_DIR}/tests/data/corpus)
set(DP_AGG_BIN $<TARGET_FILE:dmarcpipe>)
set(DP_AGG_GEN $<TARGET_FILE:dp-gen-report>)

# Sanitizer builds run 5-20 times slower: longer limits, fewer stress repeats.
string(TOLOWER "${CMAKE_BUILD_TYPE}" _dp_agg_bt)
if(_dp_agg_bt MATCHES "^(asan|tsan)$" OR CMAKE_C_FLAGS MATCHES "-fsanitize")
  set(DP_AGG_TIMEOUT 900)
  set(DP_AGG_STRESS_REPEAT 1)
else()
  set(DP_AGG_TIMEOUT 300)
  set(DP_AGG_STRESS_REPEAT 3)
endif()

# TSan: stop at the first report; GLib/GMime/tzset internals are suppressed
# (see tests/tsan.supp); g_slice off so GLib's allocator does not hide reuse.
# Every aggregate test gets it (it is inert elsewhere), so the whole label
# also runs clean in the TSan build, not only `-L tsan`.
set(DP_AGG_TSAN_ENV
  "TSAN_OPTIONS=halt_on_error=1:suppressions=${CMAKE_SOURCE_DIR}/tests/tsan.supp"
  "G_SLICE=always-malloc")

if(TARGET dp_aggregate)
  add_executable(test_aggregate_engine ${DP_AGG_DIR}/test_engine.c)
  target_link_libraries(test_aggregate_engine PRIVATE dp_aggregate dp_ingest dp_sink PkgConfig::CHECK pthread)
  add_test(NAME aggregate_engine COMMAND test_aggregate_engine)
  set_tests_properties(aggregate_engine PROPERTIES
    LABELS "aggregate;tsan" TIMEOUT ${DP_AGG_TIMEOUT}
    ENVIRONMENT "CK_FORK=yes;${DP_AGG_TSAN_ENV}")
endif()

add_test(NAME aggregate_equivalence
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_equivalence.py ${DP_AGG_BIN} ${DP_AGG_CORPUS})
add_test(NAME aggregate_independent
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_independent.py ${DP_AGG_BIN} ${DP_AGG_CORPUS})
add_test(NAME aggregate_flush
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_flush.py ${DP_AGG_BIN} ${DP_AGG_GEN}
          ${DP_AGG_CORPUS})
add_test(NAME aggregate_dedup
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_dedup.py ${DP_AGG_BIN} ${DP_AGG_GEN}
          ${DP_AGG_CORPUS})
add_test(NAME aggregate_atomic
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_atomic.py ${DP_AGG_BIN} ${DP_AGG_GEN})
add_test(NAME aggregate_mixed
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_mixed.py ${DP_AGG_BIN})
add_test(NAME aggregate_csv
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_csv.py ${DP_AGG_BIN} ${DP_AGG_CORPUS})
add_test(NAME aggregate_dkim_pick
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_dkim_pick.py ${DP_AGG_BIN})
add_test(NAME aggregate_follow
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_follow.py ${DP_AGG_BIN} ${DP_AGG_CORPUS})
set_tests_properties(aggregate_equivalence aggregate_independent aggregate_flush
                     aggregate_dedup aggregate_atomic aggregate_mixed aggregate_csv
                     aggregate_dkim_pick aggregate_follow
  PROPERTIES LABELS aggregate TIMEOUT ${DP_AGG_TIMEOUT} ENVIRONMENT "${DP_AGG_TSAN_ENV}")

# --readahead on against off: identical output; in the TSan build too.
add_test(NAME aggregate_readahead
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_readahead.py ${DP_AGG_BIN} ${DP_AGG_GEN}
          ${DP_AGG_CORPUS})
set_tests_properties(aggregate_readahead PROPERTIES
  LABELS "aggregate;tsan" TIMEOUT ${DP_AGG_TIMEOUT}
  ENVIRONMENT "${DP_AGG_TSAN_ENV}")

add_test(NAME aggregate_stress
  COMMAND ${Python3_EXECUTABLE} ${DP_AGG_DIR}/test_stress.py ${DP_AGG_BIN} ${DP_AGG_GEN}
          ${DP_AGG_CORPUS} --repeat ${DP_AGG_STRESS_REPEAT})
set_tests_properties(aggregate_stress PROPERTIES
  LABELS "aggregate;tsan" TIMEOUT ${DP_AGG_TIMEOUT}
  ENVIRONMENT "${DP_AGG_TSAN_ENV}")
