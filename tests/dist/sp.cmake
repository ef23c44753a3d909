# The connection layer (transport/sp.c): push0/pull0 over nng streams,
# against our own ends and against real nng sockets, over ipc and tcp.
troupe_dist_test(test_sp dist 300 ${CMAKE_CURRENT_SOURCE_DIR}/test_sp.c)
target_link_libraries(test_sp PRIVATE nng::nng)
