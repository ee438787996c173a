# Fault injection (a build with -DDP_FAULT=ON, common/dp_fault.c): every
# write, fsync, rename, allocation and state commit of one small run, each
# made to fail and to crash, then the run started again: exact totals.
# Label `fault`; tests/run-all runs it in build-fault.
if(NOT DP_FAULT OR NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  return()
endif()
add_test(NAME fault_every_point
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_fault.py $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/tests/data/samples)
set_tests_properties(fault_every_point PROPERTIES LABELS fault TIMEOUT 1800)

# fault_enrich_cache: the enrichment cache (--enrich-cache, LMDB) failing or
# crashing at each of its commits in a run without a state, against dnsmasq
# on loopback (tests/enrich/dns.py): exit 0, the same totals and names, one
# warning; the next run opens the cache, reuses what was committed and asks
# the DNS for the rest.  A cache that cannot be opened: memory only.
add_test(NAME fault_enrich_cache
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_enrich_cache_fault.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(fault_enrich_cache PROPERTIES LABELS fault TIMEOUT 300)
