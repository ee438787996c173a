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

# The imap:// source (source/imap_source.c) against GreenMail, each mode a
# server of its own, totals against a plain run over the same report files
# (test_imap_source.py says what each proves).  Label `imap`; 5-35 s each.
#
#   imap_source_batch        move and seen modes, quarantine, second runs
#                            (also `tsan`: workers fetch on several connections)
#   imap_source_follow       --follow while mail arrives, the server away for
#                            8 s, a SIGKILL, SIGTERM
#   imap_source_uidvalidity  the mailbox rebuilt: read again, no double count
#   imap_source_password     wrong password: one line, no retry storm, no leak
#   imap_source_xoauth2      a token file, a wrong token, a token refreshed
#   imap_source_tls          no clear login off loopback; imaps:// checks the
#                            certificate; cafile=
#   imap_source_dovecot      batch and uidvalidity against Dovecot (when installed)
# In the fault-injection build (label `fault`), with a Kafka broker of its own:
#   imap_source_crash        SIGKILL between the Kafka commit and the MOVE
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  return()
endif()
set(DP_IMAP_TEST ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_imap_source.py --dmarcpipe $<TARGET_FILE:dmarcpipe>)
foreach(mode batch follow uidvalidity password xoauth2 tls)
  add_test(NAME imap_source_${mode} COMMAND ${DP_IMAP_TEST} --mode ${mode})
  set_tests_properties(imap_source_${mode} PROPERTIES LABELS imap TIMEOUT 600)
endforeach()
# the workers fetch and reject on several connections at once: also under TSan
set_tests_properties(imap_source_batch PROPERTIES LABELS "imap;tsan")
# batch and uidvalidity again against Debian's Dovecot (dovecot-imapd), when
# it is installed: run with a config of its own, its daemon never used
find_program(DP_DOVECOT dovecot PATHS /usr/sbin NO_DEFAULT_PATH)
if(DP_DOVECOT)
  add_test(NAME imap_source_dovecot COMMAND ${DP_IMAP_TEST} --mode dovecot)
  set_tests_properties(imap_source_dovecot PROPERTIES LABELS imap TIMEOUT 600)
endif()
find_program(DP_KCAT kcat)
if(DP_FAULT AND DP_KCAT)
  add_test(NAME imap_source_crash COMMAND ${DP_IMAP_TEST} --mode crash)
  set_tests_properties(imap_source_crash PROPERTIES LABELS fault TIMEOUT 600)
endif()
