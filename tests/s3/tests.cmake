# S3 test server: the harness for an s3:// source (S3Proxy 3.0.0 from Maven
# Central, buckets in plain files; see README.md here).  Label `s3`, and
# `unit`: the smoke test takes about 3 s once the jar is cached (the first
# start fetches it with mvn, ~52 MB).
#
#   s3_smoke   tests/s3/start prints http://127.0.0.1:PORT last; with Debian's
#              curl 7.88 --aws-sigv4: PUT a bucket and two objects (one under
#              in/ with a name that needs escaping), ListObjectsV2 by prefix
#              and by continuation token, GET gives the exact bytes, a
#              multi-object delete, a wrong secret is 403, each SigV4 trap of
#              README.md refused in its wrong form; tests/s3/stop without
#              --dir; the secret in no output and on no server command line
#
# include()d from tests/CMakeLists.txt.
find_program(DP_JAVA java)
find_program(DP_MVN mvn)
find_program(DP_CURL curl)
if(NOT DP_JAVA OR NOT DP_MVN OR NOT DP_CURL)
  message(STATUS "s3 tests disabled: needs java, mvn (deploy/install-deps), curl")
  return()
endif()

add_test(NAME s3_smoke COMMAND ${CMAKE_CURRENT_LIST_DIR}/smoke.sh)
set_tests_properties(s3_smoke PROPERTIES LABELS "s3;unit" TIMEOUT 300)

# The s3:// source (source/s3_source.c, s3_client.c) against S3Proxy, each
# mode a server of its own, totals against a plain run over the same report
# files (test_s3_source.py says what each proves).  Label `s3`; 5-40 s each
# (bulk: 10,000 objects).
#
#   s3_source_bulk     10,000 objects, keep, delete, move and quarantine=,
#                      second runs count nothing
#   s3_source_big      a 50 MB and a 100 MB object streamed: exact, peak RSS flat
#   s3_source_big500   the same with 500 MB (label `slow`)
#   s3_source_kill     SIGKILL in the middle of slowed GETs, then a rerun
#   s3_source_secret   a wrong secret, an unknown key, no credentials, a
#                      follower refused, the shared credentials file
#   s3_source_faults   500s, a GET cut and resumed, always 500, a GET that
#                      cannot be finished (left for later, not rejected)
#   s3_source_follow   --follow while objects arrive, the relisting, SIGTERM
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  return()
endif()
set(DP_S3_TEST ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_s3_source.py --dmarcpipe $<TARGET_FILE:dmarcpipe>)
foreach(mode bulk big kill secret faults follow)
  add_test(NAME s3_source_${mode} COMMAND ${DP_S3_TEST} --mode ${mode})
  set_tests_properties(s3_source_${mode} PROPERTIES LABELS s3 TIMEOUT 900)
endforeach()
add_test(NAME s3_source_big500 COMMAND ${DP_S3_TEST} --mode big --big-mb 500)
set_tests_properties(s3_source_big500 PROPERTIES LABELS "s3;slow" TIMEOUT 900)
# the workers stream GETs on threads of the client at once: also under TSan
set_tests_properties(s3_source_faults PROPERTIES LABELS "s3;tsan")
