# enrich_run: `dmarcpipe run --enrich` end to end (test_enrich_run.py):
# dnsmasq on loopback answers for a test set of source IPs, MMDB files are
# built with PyPI mmdb-writer (~/.cache/dmarcpipe/enrich-venv); the rollups
# carry the right PTR, base domain, ASN, AS org, country and service; a
# second run on the same cache asks the DNS nothing; a resolver that never
# answers costs no time, leaves nulls and one warning naming it; totals are
# the same with and without enrichment.  Label `enrich`.
if(NOT TARGET dmarcpipe)
  return()
endif()
add_test(NAME enrich_run
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_enrich_run.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(enrich_run PROPERTIES LABELS enrich TIMEOUT 600)
