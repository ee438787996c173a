# Maildir source tests (maildir:PATH), label `maildir`: each one checks exact
# totals against a plain batch run over the same report files, mailed as
# receivers mail them (tests/maildir/test_maildir.py, README.md here).
#
#   maildir_basic     new/ and cur/ (flags as a mail client leaves them), a
#                     message with no report, tmp/ and a dot-file: totals;
#                     .Processed/cur with S, .Quarantine/cur and its reasons;
#                     a second run counts and moves nothing
#   maildir_smtp      aiosmtpd (PyPI, cached venv) delivers by SMTP in waves
#                     while two followers share the Maildir; SIGTERM; the two
#                     outputs together equal the truth
#   maildir_restart   a worker holding claims gets SIGKILL, then SIGKILL again
#                     in the middle of its work, restarted with the same id
#                     and state each time: it finds its own claims; exact totals
#   maildir_takeover  a worker with --claim-timeout 2 leaves a live worker's
#                     claims alone, and takes them over once it is killed:
#                     exact totals, every message once
#   maildir_hostile   a FIFO, a symbolic link and a folder planted in the
#                     Maildir neither block nor stop the run; a PATH that is
#                     not a Maildir: one line, exit 2
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  message(STATUS "maildir tests disabled: needs python3 and the dmarcpipe target")
  return()
endif()

foreach(mode basic smtp restart takeover hostile)
  add_test(NAME maildir_${mode}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_maildir.py --mode ${mode}
            --dmarcpipe $<TARGET_FILE:dmarcpipe> --corpus ${CMAKE_SOURCE_DIR}/tests/data/corpus)
  set_tests_properties(maildir_${mode} PROPERTIES LABELS maildir TIMEOUT 240)
endforeach()
