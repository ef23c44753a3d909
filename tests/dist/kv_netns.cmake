# troupe-kv across hosts (tests/dist/test_kv_netns.sh): three hosts made
# of network namespaces joined by veth links and a bridge (198.19.7.0/24,
# in the 198.18.0.0/15 set aside for tests), a node on each, the Python
# client and redis-cli on a fourth; one host cut off past the
# failure-detection bound and put back: detection within 3 s, takeovers,
# CLUSTERDOWN on the host alone, convergence after the heal, no
# acknowledged write lost. Needs root and network namespaces, redis-cli,
# protoc and /usr/bin/python3 with python3-protobuf; skipped (exit 77)
# without them.
if(TARGET troupe-kv)
  add_test(NAME test_kv_netns COMMAND bash
    ${CMAKE_CURRENT_SOURCE_DIR}/test_kv_netns.sh
    $<TARGET_FILE:troupe-kv> ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_kv_netns PROPERTIES TIMEOUT 240 LABELS dist
    SKIP_RETURN_CODE 77)
endif()
