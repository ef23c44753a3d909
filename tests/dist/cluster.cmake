# Clusters (multi-process): one seed joins the whole mesh, connect_all
# off keeps a star, lost members are reconnected by themselves, node
# monitors on ports, tr_node_list.
troupe_dist_test_public(test_node_cluster dist 600 test_node_cluster.c)
target_compile_definitions(test_node_cluster PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node_cluster troupe_test_node)
