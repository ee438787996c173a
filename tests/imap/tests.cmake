# IMAP test server: the harness for an imap:// source (GreenMail standalone
# 2.1.8 from Maven Central, in memory; see README.md here).  Label `imap`,
# and `unit`: the smoke test takes about 3 s once the jar is cached (the
# first start fetches it with mvn, ~10 MB).
#
#   imap_smoke   tests/imap/start prints imap://dmarc:PASSWORD@127.0.0.1:PORT/INBOX
#                last; a sample delivered by SMTP, then with Debian's curl:
#                UID SEARCH ALL, the fetch by UID equals the sent bytes (but
#                for headers on top and CRLF), EXAMINE gives a UIDVALIDITY, a
#                wrong password is exit 67 at once, a missing UID exit 78,
#                UID MOVE to a new folder; tests/imap/stop without --dir; the
#                password in no output and on no server command line
#
# include()d from tests/CMakeLists.txt.
find_program(DP_JAVA java)
find_program(DP_MVN mvn)
find_program(DP_CURL curl)
if(NOT DP_JAVA OR NOT DP_MVN OR NOT DP_CURL)
  message(STATUS "imap tests disabled: needs java, mvn (deploy/install-deps), curl")
  return()
endif()

add_test(NAME imap_smoke
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/smoke.sh ${CMAKE_SOURCE_DIR}/tests/data/samples/freitagsrunde-google.eml)
set_tests_properties(imap_smoke PROPERTIES LABELS "imap;unit" TIMEOUT 300)
