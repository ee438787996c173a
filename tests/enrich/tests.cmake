# enrich/: naming source IPs.  Label `enrich`.
#
#   unit_enrich          (Check, no server) the known-senders map (format,
#                        errors with FILE:LINE, longest suffix on label
#                        boundaries, case, the user's entries winning), the
#                        LMDB cache (round trip, a bad value is a miss, a
#                        corrupt file is a warning and memory only), bad
#                        options refused
#   enrich_dns           (Check, via test_enrich_dns.py) against dnsmasq on
#                        loopback (tests/enrich/dns.py: its records, a
#                        SERVFAIL stub, a silent server, a dead port) and
#                        MMDB files made by PyPI mmdb-writer: the right PTR,
#                        base domain (private PSL section too), service,
#                        ASN, org and country; unconfirmed names not
#                        reported; NXDOMAIN, SERVFAIL, timeouts negatively
#                        cached (the server's query log counted); a restart
#                        with the cache asks nothing; an expired entry is
#                        asked again, the stale answer meanwhile; a dead
#                        resolver never blocks and is warned about once;
#                        close is prompt; reads by id, the id of an IP
#                        forgotten past max_ips never giving another IP's
#                        answer, new IPs dropped only while every entry
#                        waits; threads racing (also `tsan`)
#   enrich_senders_file  the built-in map's format (senders.cmake)
#   enrich_system_resolver  no --resolver: /etc/resolv.conf, in private
#                        namespaces (sysres.cmake)
#
# include()d from tests/CMakeLists.txt.
add_executable(test_enrich_unit ${CMAKE_CURRENT_LIST_DIR}/test_enrich_unit.c)
target_link_libraries(test_enrich_unit PRIVATE dp_enrich PkgConfig::CHECK PkgConfig::LMDB)
target_include_directories(test_enrich_unit PRIVATE ${CMAKE_SOURCE_DIR}/enrich)
add_test(NAME unit_enrich COMMAND test_enrich_unit)
set_tests_properties(unit_enrich PROPERTIES LABELS "unit;enrich;tsan" ENVIRONMENT "CK_FORK=yes" TIMEOUT 120)

add_executable(test_enrich_dns ${CMAKE_CURRENT_LIST_DIR}/test_enrich_dns.c)
target_link_libraries(test_enrich_dns PRIVATE dp_enrich PkgConfig::CHECK pthread)
add_test(NAME enrich_dns
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_enrich_dns.py $<TARGET_FILE:test_enrich_dns>)
set_tests_properties(enrich_dns PROPERTIES LABELS "enrich;tsan" ENVIRONMENT "CK_FORK=yes" TIMEOUT 300)

include(${CMAKE_CURRENT_LIST_DIR}/senders.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/sysres.cmake)
