# Pids and protobuf messages in payloads (troupe/pid.h, troupe/pb.h):
# multi-process tests with a node program of their own. Both sides use a
# .proto of the test's (pbpid_test.proto) that imports troupe/pid.proto,
# generated and linked as a user's would be: against the shared library,
# which holds troupe__pid__descriptor.
set(TT_PBPID_PB_DIR ${CMAKE_CURRENT_BINARY_DIR}/pbpid_pb)
file(MAKE_DIRECTORY ${TT_PBPID_PB_DIR})
add_custom_command(
  OUTPUT ${TT_PBPID_PB_DIR}/pbpid_test.pb-c.c ${TT_PBPID_PB_DIR}/pbpid_test.pb-c.h
  COMMAND ${TROUPE_PROTOC_C} --proto_path=${PROJECT_SOURCE_DIR}/proto
          --proto_path=${CMAKE_CURRENT_SOURCE_DIR}
          --c_out=${TT_PBPID_PB_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/pbpid_test.proto
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/pbpid_test.proto ${PROJECT_SOURCE_DIR}/proto/troupe/pid.proto
  COMMENT "Generating protobuf-c code for pbpid_test.proto"
  VERBATIM)
add_library(tt_pbpid_pb STATIC ${TT_PBPID_PB_DIR}/pbpid_test.pb-c.c)
target_include_directories(tt_pbpid_pb PUBLIC ${TT_PBPID_PB_DIR})
target_link_libraries(tt_pbpid_pb PUBLIC troupe::node PkgConfig::PROTOBUFC)

add_executable(troupe_test_pbpid_node pbpid_main.c)
target_include_directories(troupe_test_pbpid_node PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(troupe_test_pbpid_node PRIVATE tt_pbpid_pb troupe::node Threads::Threads)

troupe_dist_test_public(test_node_pbpid dist 600 test_node_pbpid.c)
target_link_libraries(test_node_pbpid PRIVATE tt_pbpid_pb)
target_compile_definitions(test_node_pbpid PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_pbpid_node>")
add_dependencies(test_node_pbpid troupe_test_pbpid_node)
