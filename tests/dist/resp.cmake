# troupe-resp (samples/resp), the Redis protocol server on troupe's
# sockets: its parser alone and its commands, order and store without
# actors (pure C, no troupe), and the server under real clients
# (redis-cli, redis-benchmark, nc, raw sockets).
if(TARGET troupe-resp)
  set(resp_dir ${PROJECT_SOURCE_DIR}/samples/resp)
  add_executable(test_resp_parse test_resp_parse.c ${resp_dir}/resp_parse.c
    ${resp_dir}/resp_reply.c)
  add_executable(test_resp_store test_resp_store.c ${resp_dir}/resp_parse.c
    ${resp_dir}/resp_reply.c
    ${resp_dir}/resp_cmd.c ${resp_dir}/resp_order.c ${resp_dir}/resp_store.c)
  foreach(t test_resp_parse test_resp_store)
    target_include_directories(${t} PRIVATE ${resp_dir})
    target_link_libraries(${t} PRIVATE cmocka::cmocka)
    add_test(NAME ${t} COMMAND ${t})
    set_tests_properties(${t} PROPERTIES TIMEOUT 120 LABELS dist)
  endforeach()
endif()

# The server as clients use it (tests/dist/test_resp.sh): it needs
# redis-cli, redis-benchmark and nc, and says SKIP without them.
if(TARGET troupe-resp)
  add_test(NAME test_resp
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_resp.sh $<TARGET_FILE:troupe-resp>)
  set_tests_properties(test_resp PROPERTIES TIMEOUT 600 LABELS dist
    SKIP_REGULAR_EXPRESSION "^SKIP:")
endif()
