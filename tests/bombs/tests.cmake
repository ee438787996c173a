# Bomb tests: hostile inputs (entity expansion, decompression bombs, deep
# nesting, huge text, absurd counts, truncated containers, lying MIME types)
# must each be rejected with a one-line reason, in bounded memory, without a
# crash, and land in the quarantine with a .reason file.
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
#
#   bombs   make_bombs.py writes the inputs into the build tree (one is
#           100 MB, the bombs expand to 1 GiB: they are never committed),
#           then run_bombs.py runs `dmarcpipe parse --summary --quarantine`
#           on each and checks exit status, error line, peak RSS and the
#           quarantine.  See the docstrings of both scripts.
#
# CPU time is bounded at 5 s a case (20 s in sanitizer builds): a bomb must
# be stopped early, not inflated to the end and survived.
# Peak RSS is bounded at 64 MiB, except in sanitizer builds (build type
# Asan/Tsan, or -fsanitize in CMAKE_C_FLAGS), where shadow memory makes RSS
# meaningless and the bound is dropped.  DP_BOMBS_NO_RSS=1 in the
# environment drops it too.
find_package(Python3 3.9 COMPONENTS Interpreter)

if(NOT Python3_Interpreter_FOUND)
  message(STATUS "bombs test disabled: no Python 3.9+ interpreter")
  return()
endif()
if(NOT TARGET dmarcpipe)
  message(STATUS "bombs test not added: no dmarcpipe target yet")
  return()
endif()

set(DP_BOMBS_ARGS)
string(TOLOWER "${CMAKE_BUILD_TYPE}" _dp_bt)
if(_dp_bt MATCHES "^(asan|tsan)$" OR CMAKE_C_FLAGS MATCHES "-fsanitize")
  list(APPEND DP_BOMBS_ARGS --no-rss-limit --cpu-limit-s 20 --timeout 300)
else()
  list(APPEND DP_BOMBS_ARGS --rss-limit-mib 64 --cpu-limit-s 5)
endif()

add_test(NAME bombs
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/run_bombs.py
          --dmarcpipe $<TARGET_FILE:dmarcpipe>
          --workdir ${CMAKE_BINARY_DIR}/tests/bombs
          --generate ${DP_BOMBS_ARGS})
set_tests_properties(bombs PROPERTIES LABELS bombs TIMEOUT 1200)
