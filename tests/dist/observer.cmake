# The observer (troupe/observer.h): its HTTP endpoint on a running node,
# with a plain socket as the client and jansson to read the JSON. Public
# API only, linked as applications are.
troupe_dist_test_public(test_observer dist 120 test_observer.c)
target_link_libraries(test_observer PRIVATE PkgConfig::JANSSON)

# troupe-ctl (tools/ctl), run as a program against a node with its
# observer.
troupe_dist_test_public(test_ctl dist 120 test_ctl.c)
target_link_libraries(test_ctl PRIVATE PkgConfig::JANSSON)
target_compile_definitions(test_ctl PRIVATE TROUPE_CTL="$<TARGET_FILE:troupe-ctl>"
  TROUPE_TESTS_DIR="${PROJECT_SOURCE_DIR}/tests")
add_dependencies(test_ctl troupe-ctl)

# The observer's web page in a real headless Chromium, driven through
# chromedriver's WebDriver protocol (tests/dist/webdriver.h); the browser
# part is skipped when Chromium or chromedriver is not installed. Its
# screenshot and chromedriver's log are left in this directory.
troupe_dist_test_public(test_observer_ui dist 300 test_observer_ui.c)
target_link_libraries(test_observer_ui PRIVATE PkgConfig::JANSSON)
target_compile_definitions(test_observer_ui PRIVATE
  TROUPE_ARTIFACT_DIR="${CMAKE_CURRENT_BINARY_DIR}"
  TROUPE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The observer's supervision trees and a child's actions; its actors,
# cluster tables and other actions: against two nodes, over a plain HTTP
# client (observer_ops.h).
troupe_dist_test_public(test_observer_sup dist 120 test_observer_sup.c)
target_link_libraries(test_observer_sup PRIVATE PkgConfig::JANSSON)
troupe_dist_test_public(test_observer_ops dist 120 test_observer_ops.c)
target_link_libraries(test_observer_ops PRIVATE PkgConfig::JANSSON)

# The observer over mutual TLS (https://), with certificates made by
# openssl and openssl s_client as the client.
troupe_dist_test_public(test_observer_tls dist 120 test_observer_tls.c)

# The observer's socket counters (troupe_sock_*, and "sock" in /api/node)
# following a socket of the node's runtime, with a plain socket as the
# client.
troupe_dist_test_public(test_observer_sock dist 120 test_observer_sock.c)
target_link_libraries(test_observer_sock PRIVATE PkgConfig::JANSSON)

# The application's readiness (tr_node_set_ready) on /api/ready and
# troupe_node_ready, set from threads and from an actor while asked, with
# a plain socket as the client.
troupe_dist_test_public(test_observer_ready dist 120 test_observer_ready.c)
target_link_libraries(test_observer_ready PRIVATE PkgConfig::JANSSON)
