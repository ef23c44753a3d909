# The handshake machine (transport/hs.c) on its own: simulated networks of
# nodes with no sockets (hs_sim.h), interleavings chosen by seeds.
troupe_dist_test(test_hs dist 300 ${CMAKE_CURRENT_SOURCE_DIR}/test_hs.c)
