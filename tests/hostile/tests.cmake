# Hostile input and hostile spools: what a sender, or a careless operator,
# can do to a run, and what must hold anyway (exact counts, bounded memory
# and output, nothing that hangs, nothing private copied readable, one
# process per state).  Each script runs the real `dmarcpipe run`; label
# `hostile`.
#
#   hostile_dates   dates at the ends of int64, before 1990, after 2100, a
#                   century-long range, the longest accepted range (31 days)
#   hostile_spool   a FIFO, a socket, links to /dev/zero and to a private
#                   file, link loops, a file reached twice; a private
#                   quarantine; a follower over the same spool
#   hostile_state   two processes on one --state: one runs, the other is
#                   refused before it touches a sink; no stale lock after
#                   SIGKILL
#   hostile_file_sink  file sinks with a state are exactly once: reruns
#                   never replace, SIGKILL at random (batch and follower)
#                   gives exact totals and no torn line; a follower that
#                   cannot keep a rejection goes on and holds the input
#   hostile_kafka_away  no broker: a batch run gives up after
#                   --broker-timeout (and by default after a minute),
#                   nothing acknowledged; a follower waits, and says so
#   hostile_names   an invalid copy of a counted report is rejected, names
#                   that are not UTF-8 kept losslessly, control bytes in
#                   names escaped in the log, a sink's missing folder
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  message(STATUS "hostile tests not added: needs python3 and the dmarcpipe target")
  return()
endif()
set(DP_HOSTILE_DIR ${CMAKE_CURRENT_LIST_DIR})
string(TOLOWER "${CMAKE_BUILD_TYPE}" _dp_hostile_bt)
if(_dp_hostile_bt MATCHES "^(asan|tsan)$" OR CMAKE_C_FLAGS MATCHES "-fsanitize")
  set(DP_HOSTILE_TIMEOUT 900)
else()
  set(DP_HOSTILE_TIMEOUT 300)
endif()

add_test(NAME hostile_dates
  COMMAND ${Python3_EXECUTABLE} ${DP_HOSTILE_DIR}/test_dates.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(hostile_dates PROPERTIES LABELS hostile TIMEOUT ${DP_HOSTILE_TIMEOUT})

add_test(NAME hostile_spool
  COMMAND ${Python3_EXECUTABLE} ${DP_HOSTILE_DIR}/test_spool.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(hostile_spool PROPERTIES LABELS hostile TIMEOUT ${DP_HOSTILE_TIMEOUT})

if(TARGET dp-gen-report)
  add_test(NAME hostile_state
    COMMAND ${Python3_EXECUTABLE} ${DP_HOSTILE_DIR}/test_state.py $<TARGET_FILE:dmarcpipe>
            $<TARGET_FILE:dp-gen-report>)
  set_tests_properties(hostile_state PROPERTIES LABELS hostile TIMEOUT ${DP_HOSTILE_TIMEOUT})
endif()

if(TARGET dp-gen-report)
  add_test(NAME hostile_file_sink
    COMMAND ${Python3_EXECUTABLE} ${DP_HOSTILE_DIR}/test_file_sink.py $<TARGET_FILE:dmarcpipe>
            $<TARGET_FILE:dp-gen-report> ${CMAKE_SOURCE_DIR}/tests/data/corpus)
  set_tests_properties(hostile_file_sink PROPERTIES LABELS hostile TIMEOUT ${DP_HOSTILE_TIMEOUT})
endif()

add_test(NAME hostile_kafka_away
  COMMAND ${Python3_EXECUTABLE} ${DP_HOSTILE_DIR}/test_kafka_away.py $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/tests/data/samples)
set_tests_properties(hostile_kafka_away PROPERTIES LABELS hostile TIMEOUT ${DP_HOSTILE_TIMEOUT})

add_test(NAME hostile_names
  COMMAND ${Python3_EXECUTABLE} ${DP_HOSTILE_DIR}/test_names.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(hostile_names PROPERTIES LABELS hostile TIMEOUT ${DP_HOSTILE_TIMEOUT})
