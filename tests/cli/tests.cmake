# The option tables (cli/options.h): --help, dmarcpipe(1), the
# configuration file, the DMARCPIPE_* variables and `dmarcpipe config`,
# each checked against the running program (tests/cli/test_cli.py): the
# page renders without a groff warning and lists exactly the options of
# each command's --help; file < environment < flags, a repeatable option
# replaced whole; bad keys and values named with file, line and key,
# exit 2; no secret in `dmarcpipe config`; its output read back gives the
# same configuration.  Label `cli`.
#
# include()d from tests/CMakeLists.txt after the dmarcpipe target exists.
if(NOT Python3_Interpreter_FOUND OR NOT TARGET dmarcpipe)
  message(STATUS "cli tests not added: needs python3 and the dmarcpipe target")
  return()
endif()

add_test(NAME cli_options
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_cli.py $<TARGET_FILE:dmarcpipe> ${CMAKE_BINARY_DIR}
          ${CMAKE_SOURCE_DIR}/tests/data/samples)
set_tests_properties(cli_options PROPERTIES LABELS cli TIMEOUT 300)
