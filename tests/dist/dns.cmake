# DNS discovery (transport/node_dns.c, troupe/dns.h): its API and the
# resolver through /etc/hosts, in this process and with a test node.
troupe_dist_test_public(test_node_dns dist 120 test_node_dns.c)
target_compile_definitions(test_node_dns PRIVATE
  TT_NODE_MAIN="$<TARGET_FILE:troupe_test_node>")
add_dependencies(test_node_dns troupe_test_node)

# Against a real DNS server: dnsmasq in a network namespace of the test's
# own (198.18.0.0/15 addresses on its loopback), five node processes that
# know only a DNS name (A records, then SRV), a sixth found when the
# records change. Needs root (ip netns) and dnsmasq (deploy/setup.sh
# installs dnsmasq-base); without them it fails and says why.
add_test(NAME test_node_dns_netns COMMAND bash
  ${CMAKE_CURRENT_SOURCE_DIR}/test_node_dns_netns.sh
  $<TARGET_FILE:troupe_test_node>)
set_tests_properties(test_node_dns_netns PROPERTIES TIMEOUT 120 LABELS dist)
