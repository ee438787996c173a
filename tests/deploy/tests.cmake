# The deploy files, checked offline: deploy/systemd/dmarcpipe.service
# verified and rated by systemd-analyze.  Label `deploy`.
add_test(NAME deploy_systemd
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_systemd.sh $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/deploy/systemd/dmarcpipe.service)
set_tests_properties(deploy_systemd PROPERTIES LABELS deploy TIMEOUT 60)
