# enrich_system_resolver: `dmarcpipe run --enrich` with no --resolver, so
# c-ares reads /etc/resolv.conf (test_system_resolver.py).  The run happens
# in private mount, network and PID namespaces (unshare, util-linux):
# dnsmasq on 127.0.0.1:53 with tests/enrich/dns.py's records, a temporary
# resolv.conf bind-mounted over /etc/resolv.conf there only; the rollups
# carry the same fields as with --resolver; with the system's nameserver an
# address where nothing listens, the run is as fast, exact and null, with
# one warning naming the system's resolver.  Needs root: exit 77 (skipped)
# elsewhere.  Label `enrich`.
if(NOT TARGET dmarcpipe)
  return()
endif()
add_test(NAME enrich_system_resolver
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_system_resolver.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(enrich_system_resolver PROPERTIES LABELS enrich TIMEOUT 300 SKIP_RETURN_CODE 77)
