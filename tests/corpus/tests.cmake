# Corpus tests: real-world DMARC reports in tests/data/corpus.
#
# include()d from tests/CMakeLists.txt, after the dmarcpipe executable target
# is defined (the parity test needs $<TARGET_FILE:dmarcpipe>).  Paths use
# CMAKE_CURRENT_LIST_DIR, so they hold wherever this file is included from.
#
#   corpus_manifest  independent.py re-derives every MANIFEST.tsv row (reports,
#                    records, messages, accept/reject, sha256).  Guards the
#                    test data itself; needs no build.
#   corpus_parity    dmarcpipe's `parse` NDJSON against independent.py, record
#                    by record, for every file the independent parser accepts.
#   corpus_parity_selftest
#                    the parity harness run against the independent parser
#                    itself, so a broken harness is told apart from a broken
#                    dmarcpipe.

find_package(Python3 3.8 COMPONENTS Interpreter)

if(NOT Python3_Interpreter_FOUND)
  message(STATUS "corpus tests disabled: no Python 3 interpreter")
  return()
endif()

set(DP_CORPUS_DIR ${CMAKE_SOURCE_DIR}/tests/data/corpus)

add_test(NAME corpus_manifest
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/independent.py
          --check-manifest ${DP_CORPUS_DIR})

add_test(NAME corpus_parity_selftest
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/compare_parse.py
          --self-test --manifest ${DP_CORPUS_DIR})

if(TARGET dmarcpipe)
  add_test(NAME corpus_parity
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/compare_parse.py
            $<TARGET_FILE:dmarcpipe> --manifest ${DP_CORPUS_DIR})
  # A sanitizer build parses ~170 files one process at a time.
  set_tests_properties(corpus_parity PROPERTIES TIMEOUT 900 LABELS corpus)
else()
  message(STATUS "corpus_parity not added: no dmarcpipe target yet "
                 "(include tests.cmake after add_executable(dmarcpipe ...))")
endif()

set_tests_properties(corpus_manifest corpus_parity_selftest PROPERTIES LABELS corpus)

# The same manifest through the C library, one Check test per row: exact
# counts for accepted files, a reason for rejected ones, the documented
# salvage rules for the two files they recover.
if(TARGET dp_ingest)
  add_executable(test_corpus ${CMAKE_CURRENT_LIST_DIR}/test_corpus.c)
  target_link_libraries(test_corpus PRIVATE dp_ingest dp_common PkgConfig::CHECK)
  add_test(NAME corpus_check COMMAND test_corpus ${DP_CORPUS_DIR})
  set_tests_properties(corpus_check PROPERTIES LABELS corpus TIMEOUT 600)
endif()
