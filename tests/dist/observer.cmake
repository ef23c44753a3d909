# The observer (troupe/observer.h): its HTTP endpoint on a running node,
# with a plain socket as the client and jansson to read the JSON. Public
# API only, linked as applications are.
troupe_dist_test_public(test_observer dist 120 test_observer.c)
target_link_libraries(test_observer PRIVATE PkgConfig::JANSSON)
