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
