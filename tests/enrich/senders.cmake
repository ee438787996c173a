# The built-in known-senders map (enrich/known_senders.tsv) is well formed:
# four TAB-separated fields, documented TYPEs, lowercase valid DOMAINs never
# listed twice, https citations; broken copies are reported
# (tests/enrich/test_senders_file.py).
add_test(NAME enrich_senders_file
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_senders_file.py
          ${CMAKE_SOURCE_DIR}/enrich/known_senders.tsv)
set_tests_properties(enrich_senders_file PROPERTIES LABELS enrich TIMEOUT 60)
