# Kafka tests: the Kafka sink against a real broker (Apache Kafka 3.9.1,
# KRaft, from Maven Central: see README.md here).  A CTest fixture starts
# one broker per build tree before the first test that needs it and stops
# it after the last; every test uses topics of its own.  Label `kafka`.
#
#   kafka_broker_start / _stop   the fixture (tests/kafka/start, stop)
#   kafka_exactly_once_kill      20 x SIGKILL at random moments, restarts:
#                                read_committed totals equal the truth
#   kafka_exactly_once_sigterm   SIGTERM mid-run exits 0; then completed
#   kafka_broker_restart         the broker stops mid-run and comes back
#                                (a broker of its own): the run resumes
#   kafka_lost_state             the state deleted after a complete run:
#                                the restart takes every input from the
#                                ledger, names that are not UTF-8 included
#   kafka_follow                 --follow --done over a spool fed in waves,
#                                8 x SIGKILL and restarts, then SIGTERM:
#                                exit 0, every input in DONE, totals exact
#   kafka_warehouse_sql          rollups consumed read_committed, loaded into
#                                SQLite with the warehouse schema, checked
#   kafka_feed_read              dp_feed_read over three partitions with an
#                                aborted and an open transaction: committed
#                                messages once, where each lies, the ends
#                                found at the start; errors
#   kafka_report                 `dmarcpipe report` over the topics equals
#                                the report over a file run, byte for byte;
#                                a missing topic, no broker, a secret
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
find_program(DP_KCAT kcat)
find_program(DP_JAVA java)
find_program(DP_MVN mvn)
if(NOT DP_KCAT OR NOT DP_JAVA OR NOT DP_MVN OR NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  message(STATUS "kafka tests disabled: needs kcat, java, mvn, python3 (deploy/install-deps)")
  return()
endif()

set(DP_KAFKA_SCRIPTS ${CMAKE_CURRENT_LIST_DIR})
set(DP_KAFKA_BROKER_DIR ${CMAKE_BINARY_DIR}/kafka-broker)
set(DP_KAFKA_EO ${Python3_EXECUTABLE} ${DP_KAFKA_SCRIPTS}/test_exactly_once.py
    --dmarcpipe $<TARGET_FILE:dmarcpipe> --corpus ${CMAKE_SOURCE_DIR}/tests/data/corpus)

# a broker left by an interrupted run is stopped first
add_test(NAME kafka_broker_start
  COMMAND sh -c "'${DP_KAFKA_SCRIPTS}/stop' --dir '${DP_KAFKA_BROKER_DIR}' >/dev/null 2>&1; exec '${DP_KAFKA_SCRIPTS}/start' --dir '${DP_KAFKA_BROKER_DIR}'")
set_tests_properties(kafka_broker_start PROPERTIES FIXTURES_SETUP kafka LABELS kafka TIMEOUT 300)
add_test(NAME kafka_broker_stop COMMAND ${DP_KAFKA_SCRIPTS}/stop --dir ${DP_KAFKA_BROKER_DIR})
set_tests_properties(kafka_broker_stop PROPERTIES FIXTURES_CLEANUP kafka LABELS kafka TIMEOUT 120)

add_test(NAME kafka_exactly_once_kill
  COMMAND ${DP_KAFKA_EO} --mode kill --kills 20 --copies 10 --epoch-inputs 1 --max-kill-delay 1.0
          --bootstrap-file ${DP_KAFKA_BROKER_DIR}/bootstrap)
add_test(NAME kafka_exactly_once_sigterm
  COMMAND ${DP_KAFKA_EO} --mode sigterm --epoch-inputs 1 --copies 5 --bootstrap-file ${DP_KAFKA_BROKER_DIR}/bootstrap)
add_test(NAME kafka_lost_state
  COMMAND ${DP_KAFKA_EO} --mode lost-state --epoch-inputs 5 --bootstrap-file ${DP_KAFKA_BROKER_DIR}/bootstrap)
add_test(NAME kafka_follow
  COMMAND ${DP_KAFKA_EO} --mode follow --kills 8 --copies 2 --epoch-inputs 5 --max-kill-delay 1.5
          --bootstrap-file ${DP_KAFKA_BROKER_DIR}/bootstrap)
set_tests_properties(kafka_exactly_once_kill kafka_exactly_once_sigterm kafka_lost_state kafka_follow PROPERTIES
  FIXTURES_REQUIRED kafka LABELS kafka TIMEOUT 600)

add_test(NAME kafka_broker_restart COMMAND ${DP_KAFKA_EO} --mode restart --epoch-inputs 1 --copies 5)
set_tests_properties(kafka_broker_restart PROPERTIES LABELS kafka TIMEOUT 600)

# the warehouse path: Kafka -> read_committed consumer -> SQLite (STRICT
# schema of deploy/warehouse/sqlite.sql) -> totals checked with SQL
add_test(NAME kafka_warehouse_sql
  COMMAND ${DP_KAFKA_SCRIPTS}/test_warehouse.sh $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/tests/data/corpus ${DP_KAFKA_BROKER_DIR}/bootstrap)
set_tests_properties(kafka_warehouse_sql PROPERTIES FIXTURES_REQUIRED kafka LABELS kafka TIMEOUT 300)

# reading a feed back (sink/feed_read.c): the C API against the broker, with
# transactions of the test's own; then `dmarcpipe report` end to end
add_executable(test_feed_read ${DP_KAFKA_SCRIPTS}/test_feed_read.c)
target_link_libraries(test_feed_read PRIVATE dp_sink PkgConfig::CHECK PkgConfig::RDKAFKA)
add_test(NAME kafka_feed_read COMMAND test_feed_read ${DP_KAFKA_BROKER_DIR}/bootstrap)
set_tests_properties(kafka_feed_read PROPERTIES FIXTURES_REQUIRED kafka LABELS kafka TIMEOUT 180
  ENVIRONMENT "CK_FORK=no")
add_test(NAME kafka_report
  COMMAND ${DP_KAFKA_SCRIPTS}/test_report.sh $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/tests/data/samples ${DP_KAFKA_BROKER_DIR}/bootstrap)
set_tests_properties(kafka_report PROPERTIES FIXTURES_REQUIRED kafka LABELS kafka TIMEOUT 180)

# the Kafka inbox (source/kafka_inbox.c): workers of one consumer group
# over an inbox of four partitions, rollups and offsets in one transaction;
# read_committed totals equal a file run over the same reports
#   kafka_inbox_batch   two batch workers, a rebalance; a third finds nothing
#   kafka_inbox_group   followers: a third joins, one is killed with SIGKILL
#   kafka_inbox_s3      S3 event notifications naming objects in S3Proxy
#   kafka_inbox_dup     each report in two partitions, two workers: once
add_executable(create_topic ${DP_KAFKA_SCRIPTS}/create_topic.c)
target_link_libraries(create_topic PRIVATE PkgConfig::RDKAFKA)
set(DP_KAFKA_INBOX ${Python3_EXECUTABLE} ${DP_KAFKA_SCRIPTS}/test_inbox.py
    --dmarcpipe $<TARGET_FILE:dmarcpipe> --corpus ${CMAKE_SOURCE_DIR}/tests/data/corpus
    --create-topic $<TARGET_FILE:create_topic> --bootstrap-file ${DP_KAFKA_BROKER_DIR}/bootstrap)
foreach(mode IN ITEMS batch group s3 dup)
  add_test(NAME kafka_inbox_${mode} COMMAND ${DP_KAFKA_INBOX} --mode ${mode})
  set_tests_properties(kafka_inbox_${mode} PROPERTIES FIXTURES_REQUIRED kafka LABELS kafka TIMEOUT 600)
endforeach()
