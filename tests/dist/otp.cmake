# What OTP users expect of nodes (multi-process): monitors and links to
# pids of nodes that are not connected, node monitors that count, calls
# from actors by pid and by {name, node}, the node's name in log events.
troupe_dist_test_public(test_node_otp dist 600 test_node_otp.c)
target_compile_definitions(test_node_otp PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node_otp troupe_test_node)
