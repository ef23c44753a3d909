# The Python client of the client endpoint (samples/kv/client) against
# test nodes with a client endpoint (node_main.c --client), and
# kv_client.py's RESP and load mode (tests/dist/test_client_py.sh). It
# needs Debian's /usr/bin/python3 with python3-protobuf, and protoc; it
# is skipped (exit 77) without them.
add_test(NAME test_client_py COMMAND bash
  ${CMAKE_CURRENT_SOURCE_DIR}/test_client_py.sh
  $<TARGET_FILE:troupe_test_node> ${PROJECT_SOURCE_DIR})
set_tests_properties(test_client_py PROPERTIES TIMEOUT 300 LABELS dist
  SKIP_RETURN_CODE 77)
