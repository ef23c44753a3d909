# Node tests (transport/node.c): multi-process tests that fork/exec the
# test node program below. It uses the public API only and links the
# shared libraries, as an application would, so that every multi-process
# test runs its nodes on libtroupe-node.so over libtroupe.so.
add_executable(troupe_test_node node_main.c)
target_include_directories(troupe_test_node PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(troupe_test_node PRIVATE troupe::node Threads::Threads)

troupe_dist_test(test_node dist 600 test_node.c)
target_link_libraries(test_node PRIVATE nng::nng)
target_compile_definitions(test_node PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node troupe_test_node)

# What a node must withstand: unauthenticated Hellos, mutual dialling,
# local-only types from the wire; remote starts of children by name.
troupe_dist_test(test_node_guard dist 600 test_node_guard.c)
target_link_libraries(test_node_guard PRIVATE nng::nng)
target_compile_definitions(test_node_guard PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node_guard troupe_test_node)

# A peer that reads nothing (SIGSTOP) with its socket and queue full:
# local actors and the other peer keep going, its queue stays bounded,
# and what was accepted for it is delivered once it reads again.
troupe_dist_test_public(test_node_stall dist 300 test_node_stall.c)
target_compile_definitions(test_node_stall PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node_stall troupe_test_node)

# A node that sees another restart 100,000 times: memory, descriptors and
# its table stay flat (TROUPE_CHURN sets the count).
troupe_dist_test_public(test_node_churn dist 900 test_node_churn.c)

# The C examples of docs/distribution.md compile as plain C11, against the
# public headers and the generated troupe/version.h.
add_test(NAME test_doc_c COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/doc_c.sh
  ${CMAKE_C_COMPILER} ${PROJECT_SOURCE_DIR}/include:${TROUPE_GENERATED_INCLUDE_DIR}
  ${PROJECT_SOURCE_DIR}/docs/distribution.md)
set_tests_properties(test_doc_c PROPERTIES TIMEOUT 60 LABELS dist)
