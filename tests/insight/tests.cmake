# `dmarcpipe report` (insight/): each test runs the real program on feeds
# that `dmarcpipe run` wrote.  Label `unit`.
#
#   insight_html   the HTML report: self-contained (no script, nothing
#                  loaded from outside), hostile strings shown as text,
#                  one section and two charts per domain; headless
#                  Chromium's DOM and screenshot (kept in
#                  <build>/artifacts/insight/)
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
if(NOT TARGET dmarcpipe)
  message(STATUS "insight tests not added: no dmarcpipe target")
  return()
endif()

add_test(NAME insight_html COMMAND ${CMAKE_CURRENT_LIST_DIR}/html.sh ${CMAKE_BINARY_DIR})
set_tests_properties(insight_html PROPERTIES LABELS unit TIMEOUT 300)

# insight_planted: reports with planted senders (gen_planted.py, 3 seeds)
# through `run` and `report`: every domain's classes, verdict, next step,
# what reject would block, policy, days, reporters and sources, and the
# alerts, against the generator's answer; partial rollups (--max-keys 1,
# two runs into two INPUT folders) give the same JSON byte for byte;
# --domain, the default period, -o, table and html; a bad feed line
# (exit 1, FILE:LINE); exit statuses 2 and 3; the real corpus (verdicts
# and totals).  Sanitizer builds run it 5-20 times slower.
string(TOLOWER "${CMAKE_BUILD_TYPE}" _dp_insight_bt)
if(_dp_insight_bt MATCHES "^(asan|tsan)$" OR CMAKE_C_FLAGS MATCHES "-fsanitize")
  set(DP_INSIGHT_PLANTED_TIMEOUT 900)
else()
  set(DP_INSIGHT_PLANTED_TIMEOUT 300)
endif()
add_test(NAME insight_planted
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/planted.py
          $<TARGET_FILE:dmarcpipe> ${CMAKE_SOURCE_DIR})
set_tests_properties(insight_planted PROPERTIES LABELS unit TIMEOUT ${DP_INSIGHT_PLANTED_TIMEOUT})

# insight_warehouse: deploy/warehouse's insight views (ClickHouse through
# chdb, DuckDB, SQLite) give every domain's and source's classes, verdict,
# next step and would_block_* as `dmarcpipe report --format json` does, on
# planted reports (gen_reports.py), whole and as partial rollups; a broken
# copy of the SQL must fail in each engine.  chdb and duckdb are pip
# installed into ~/.cache/dmarcpipe/insight-venv (needs PyPI the first time; fails,
# never skips, without it).
add_test(NAME insight_warehouse COMMAND ${CMAKE_CURRENT_LIST_DIR}/warehouse.sh ${CMAKE_BINARY_DIR})
set_tests_properties(insight_warehouse PROPERTIES LABELS unit TIMEOUT 300)

# insight_services: the source_* fields of v2 rollups (what `run --enrich`
# writes): planted senders of three services, v1 lines and lines flushed
# before their lookup ended beside them; the service (or base domain)
# beside each source in JSON, table and HTML, and the sources grouped by
# service with what each lacks ("DKIM not set up for your domain").
add_test(NAME insight_services
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/services.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(insight_services PROPERTIES LABELS unit TIMEOUT 120)
