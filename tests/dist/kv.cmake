# troupe-kv (samples/kv), the flagship: its cluster under redis-cli and
# the Python client, nodes and a parser killed (test_kv.sh), its placement
# alone (test_kv_view), and the demo
# of the README's first command, shortened (samples/kv/demo.sh).
if(TARGET troupe-kv)
  set(kv_dir ${PROJECT_SOURCE_DIR}/samples/kv)
  add_executable(test_kv_view test_kv_view.c ${kv_dir}/kv_view.c)
  target_include_directories(test_kv_view PRIVATE ${kv_dir}
    ${PROJECT_SOURCE_DIR}/samples/resp)
  target_link_libraries(test_kv_view PRIVATE troupe::node cmocka::cmocka)
  add_test(NAME test_kv_view COMMAND test_kv_view)
  set_tests_properties(test_kv_view PROPERTIES TIMEOUT 60 LABELS dist)
  add_test(NAME test_kv
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_kv.sh $<TARGET_FILE:troupe-kv>)
  set_tests_properties(test_kv PROPERTIES TIMEOUT 300 LABELS dist
    SKIP_REGULAR_EXPRESSION "^SKIP:")
  add_test(NAME test_kv_demo
    COMMAND bash ${PROJECT_SOURCE_DIR}/samples/kv/demo.sh $<TARGET_FILE:troupe-kv>)
  set_tests_properties(test_kv_demo PROPERTIES TIMEOUT 300 LABELS dist
    ENVIRONMENT "TROUPE_DEMO_SECONDS=15")
endif()
