# Cluster-wide names (troupe/global.h), multi-process: the global test
# node program and its test.
add_executable(troupe_test_gnode global_node.c)
target_include_directories(troupe_test_gnode PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(troupe_test_gnode PRIVATE troupe::node Threads::Threads)

troupe_dist_test(test_node_global dist 300 test_node_global.c)
target_compile_definitions(test_node_global PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_gnode>")
add_dependencies(test_node_global troupe_test_gnode)
