# The mbox source (mbox:PATH), and hostile mail through the mail sources
# (mbox: and maildir:), label `mail`: each test checks exact totals against
# a plain batch run over the same report files, mailed as receivers mail
# them; the mail is made at test time, never stored (README.md here).
#
#   mail_mbox     batch = the truth; a restart reads nothing; appended
#                 messages alone are read; a file replaced (another inode),
#                 rewritten in place or cut short starts over with a warning
#                 and counts nothing twice; following, a last message still
#                 being written waits, and is counted once whole; messages
#                 that cannot be read now are held, and counted next time
#   mail_hostile  multipart bombs (10,000 and 100,000 deep, 100,000 parts),
#                 10,000 report attachments at and over the part limit, and
#                 attachments that are not reports (PDF, PNG, XML text, ARF,
#                 TLS): each rejected with its reason and quarantined, the
#                 good messages beside them counted exactly, memory bounded
#   mail_duplicates  one report mailed twice to a Maildir, another to the
#                 Maildir and an mbox (once gzipped): one run over both
#                 counts each once; later copies are duplicates
#   mail_big      (also `slow`) a ~200 MB message (a 100 MB report in
#                 base64 beside a 50 MB attachment) counts exactly in flat
#                 memory (peak RSS under 100 MiB; about 30 MiB today)
#
# Peak RSS is measured with GNU time (deploy/install-deps: `time`) and not
# asserted in sanitizer builds (DP_SANITIZED=1, set by tests/run-all).
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe OR NOT TARGET dp-gen-report)
  message(STATUS "mail tests disabled: needs python3 and the dmarcpipe and dp-gen-report targets")
  return()
endif()
string(TOLOWER "${CMAKE_BUILD_TYPE}" _dp_mail_bt)
if(_dp_mail_bt MATCHES "^(asan|tsan)$" OR CMAKE_C_FLAGS MATCHES "-fsanitize")
  set(DP_MAIL_TIMEOUT 900)
else()
  set(DP_MAIL_TIMEOUT 300)
endif()

add_test(NAME mail_mbox
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_mbox.py $<TARGET_FILE:dmarcpipe>
          $<TARGET_FILE:dp-gen-report> ${CMAKE_SOURCE_DIR}/tests/data/samples)
# also `tsan`: the engine's workers open and reject messages of one mbox at once
set_tests_properties(mail_mbox PROPERTIES LABELS "mail;tsan" TIMEOUT ${DP_MAIL_TIMEOUT})

foreach(what hostile big)
  add_test(NAME mail_${what}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_hostile_mail.py $<TARGET_FILE:dmarcpipe>
            $<TARGET_FILE:dp-gen-report> ${what})
endforeach()
set_tests_properties(mail_hostile PROPERTIES LABELS mail TIMEOUT ${DP_MAIL_TIMEOUT})
# 10-25 s: it writes and reads ~800 MB of files
set_tests_properties(mail_big PROPERTIES LABELS "mail;slow" TIMEOUT ${DP_MAIL_TIMEOUT})

# the same report mailed twice, to a Maildir and an mbox: counted once
add_test(NAME mail_duplicates
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_duplicates.py $<TARGET_FILE:dmarcpipe>)
set_tests_properties(mail_duplicates PROPERTIES LABELS mail TIMEOUT ${DP_MAIL_TIMEOUT})
