# Sockets owned by actors (troupe/sock.h): probes make the calls, plain
# sockets of the test thread (and real clients: nc, socat, openssl
# s_client, redis-cli) are the other end. Public API only.
troupe_dist_test_public(test_sock dist 120 test_sock.c)
troupe_dist_test_public(test_sock_own dist 120 test_sock_own.c)
