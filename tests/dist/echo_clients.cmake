# The echo sample (samples/sockets/echo.c) as a program, against clients
# troupe did not write: nc (netcat-openbsd), socat and openssl s_client,
# over tcp:// (raw and line mode), ipc:// and tls+tcp:// (with and
# without client certificates). Fails, and says which, when one of those
# programs is not installed.
if(TARGET troupe-echo)
  add_test(NAME test_echo_clients COMMAND bash
    ${CMAKE_CURRENT_SOURCE_DIR}/test_echo_clients.sh $<TARGET_FILE:troupe-echo>)
  set_tests_properties(test_echo_clients PROPERTIES TIMEOUT 300 LABELS dist)
endif()
