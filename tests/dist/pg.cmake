# Process groups (troupe/pg.h), multi-process: this test is one node and
# drives node processes of its own program (pg_node_main.c) over stdin.
add_executable(troupe_test_pg_node pg_node_main.c)
target_link_libraries(troupe_test_pg_node PRIVATE troupe::node Threads::Threads)
troupe_dist_test_public(test_node_pg dist 300 test_node_pg.c)
target_compile_definitions(test_node_pg PRIVATE
  TT_PG_NODE="$<TARGET_FILE:troupe_test_pg_node>")
add_dependencies(test_node_pg troupe_test_pg_node)
