# Metrics, health and the endpoint of `dmarcpipe run --metrics-addr`.
# Label `metrics`.
#
#   unit_metrics      (Check) the registry's text format (escaping, the
#                     histogram's buckets), bounded labels, two threads
#                     counting at once (also `tsan`), the endpoint on real
#                     sockets: /metrics, /healthz, /readyz, IPv6, a port taken
#   metrics_follow    a follower with --metrics-addr over a folder the test
#                     fills: scraped during the run, `promtool check metrics`
#                     clean, the messages equal to the rollups', /healthz and
#                     /readyz, SIGTERM; a batch run with a bad input: the
#                     rejection's stage and reason; a port already taken
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
add_executable(test_metrics ${CMAKE_CURRENT_LIST_DIR}/test_metrics.c)
target_link_libraries(test_metrics PRIVATE dp_common PkgConfig::CHECK pthread)
add_test(NAME unit_metrics COMMAND test_metrics)
set_tests_properties(unit_metrics PROPERTIES LABELS "unit;metrics;tsan" ENVIRONMENT "CK_FORK=yes" TIMEOUT 120)

find_program(DP_PROMTOOL promtool)
if(NOT DP_PROMTOOL OR NOT TARGET dmarcpipe OR NOT TARGET dp-gen-report)
  message(STATUS "metrics_follow disabled: needs promtool (Debian prometheus; deploy/install-deps)")
  return()
endif()
add_test(NAME metrics_follow
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_metrics_run.py
          --dmarcpipe $<TARGET_FILE:dmarcpipe> --gen-report $<TARGET_FILE:dp-gen-report>
          --promtool ${DP_PROMTOOL})
set_tests_properties(metrics_follow PROPERTIES LABELS metrics TIMEOUT 300)
