# troupe-resp (samples/resp), the Redis protocol server on troupe's
# sockets: its parser alone (pure C, no troupe), and the server under real
# clients (redis-cli, redis-benchmark, nc, raw sockets).
if(TARGET troupe-resp)
  add_executable(test_resp_parse test_resp_parse.c
    ${PROJECT_SOURCE_DIR}/samples/resp/resp_parse.c)
  target_include_directories(test_resp_parse PRIVATE
    ${PROJECT_SOURCE_DIR}/samples/resp)
  target_link_libraries(test_resp_parse PRIVATE cmocka::cmocka)
  add_test(NAME test_resp_parse COMMAND test_resp_parse)
  set_tests_properties(test_resp_parse PROPERTIES TIMEOUT 120 LABELS dist)
endif()

# The server as clients use it (tests/dist/test_resp.sh): it needs
# redis-cli, redis-benchmark and nc, and says SKIP without them.
if(TARGET troupe-resp)
  add_test(NAME test_resp
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_resp.sh $<TARGET_FILE:troupe-resp>)
  set_tests_properties(test_resp PROPERTIES TIMEOUT 600 LABELS dist
    SKIP_REGULAR_EXPRESSION "^SKIP:")
endif()
