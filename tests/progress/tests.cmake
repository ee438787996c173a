# The progress line of a batch `dmarcpipe run` (cli/progress.c), in a real
# terminal: a detached tmux session (Debian tmux).  Label `progress`.
#
#   progress_terminal   a run over 3000 generated reports: the pane shows
#                       one progress line with its figures while it runs,
#                       and the summary alone at the end; stderr to a file
#                       and --progress off get no progress line at all
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
find_program(DP_TMUX tmux)
if(NOT DP_TMUX OR NOT TARGET dmarcpipe OR NOT TARGET dp-gen-report)
  message(STATUS "progress tests disabled: needs tmux (deploy/install-deps)")
  return()
endif()
add_test(NAME progress_terminal
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_progress.py
          --dmarcpipe $<TARGET_FILE:dmarcpipe> --gen-report $<TARGET_FILE:dp-gen-report>)
set_tests_properties(progress_terminal PROPERTIES LABELS progress TIMEOUT 600)
