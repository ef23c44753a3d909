# troupe-kv (samples/kv), the flagship: its cluster under redis-cli and
# the Python client, nodes and a parser killed (test_kv.sh), and the demo
# of the README's first command, shortened (samples/kv/demo.sh).
if(TARGET troupe-kv)
  add_test(NAME test_kv
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_kv.sh $<TARGET_FILE:troupe-kv>)
  set_tests_properties(test_kv PROPERTIES TIMEOUT 300 LABELS dist
    SKIP_REGULAR_EXPRESSION "^SKIP:")
  add_test(NAME test_kv_demo
    COMMAND bash ${PROJECT_SOURCE_DIR}/samples/kv/demo.sh $<TARGET_FILE:troupe-kv>)
  set_tests_properties(test_kv_demo PROPERTIES TIMEOUT 300 LABELS dist
    ENVIRONMENT "TROUPE_DEMO_SECONDS=15")
endif()
