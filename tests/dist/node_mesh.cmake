# Node tests with three and more nodes (pids passed on between nodes, node
# monitors): multi-process, with the test node program of node.cmake.
troupe_dist_test(test_node_mesh dist 600 test_node_mesh.c)
target_compile_definitions(test_node_mesh PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node_mesh troupe_test_node)
