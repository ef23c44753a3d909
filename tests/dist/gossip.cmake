# Membership gossip against its bounds (transport/node_mesh.c): entries
# per message, members in all, malformed payloads. In-process, through
# the layer's internals.
troupe_dist_test(test_node_gossip dist 120 test_node_gossip.c)
