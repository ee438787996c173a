# dmarcpipe's logs (common/dp_log.c) with the real program; label `logs`
# (test_logs.py says what each proves).
#
#   logs_formats  json, logfmt, plain and auto (a pipe, a pty) over the
#                 samples and bad inputs; the summary event's figures
#                 against the outputs; --log-level warn and error (~5 s)
#   logs_secrets  at --log-level debug, runs that fail with an IMAP
#                 password (GreenMail, when java and mvn are there), an S3
#                 secret key and a Kafka SASL password: the secret in no
#                 output, file or /proc/PID/cmdline (~15 s)
#
# These tests choose their formats themselves: tests/CMakeLists.txt gives
# every other test DMARCPIPE_LOG_FORMAT=plain, but not these.
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  return()
endif()
foreach(mode formats secrets)
  add_test(NAME logs_${mode}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_logs.py --dmarcpipe $<TARGET_FILE:dmarcpipe>
            --mode ${mode})
  set_tests_properties(logs_${mode} PROPERTIES LABELS logs TIMEOUT 600)
endforeach()
