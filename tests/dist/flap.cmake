# A cluster of node processes with global names and process groups
# (cluster_node_main.c), one of them flapping (test_node_flap.c).
add_executable(troupe_test_cluster_node cluster_node_main.c)
target_link_libraries(troupe_test_cluster_node PRIVATE troupe::node Threads::Threads)
troupe_dist_test_public(test_node_flap dist 600 test_node_flap.c)
target_compile_definitions(test_node_flap PRIVATE
  TT_CLUSTER_NODE="$<TARGET_FILE:troupe_test_cluster_node>")
add_dependencies(test_node_flap troupe_test_cluster_node)
