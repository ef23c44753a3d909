# The connection layer (transport/sp.h): push0/pull0 over nng streams,
# against our own ends and against real nng sockets, over ipc and tcp; its
# stream parser alone; connections that never get trusted; and polled reads.
foreach(t test_sp test_sp_parse test_sp_untrusted test_sp_poll)
  troupe_dist_test(${t} dist 300 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c)
  target_link_libraries(${t} PRIVATE nng::nng)
endforeach()
