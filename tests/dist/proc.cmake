# Process children's launcher and output splitter (transport/proc_spawn.c,
# transport/proc_lines.c): real child processes, pipes and /proc; the
# splitter alone.
foreach(t test_proc_spawn test_proc_lines)
  troupe_dist_test(${t} dist 120 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c)
endforeach()

# Process children end to end (troupe/proc.h): the test program is also
# the child program it re-executes.
troupe_dist_test(test_proc dist 180 ${CMAKE_CURRENT_SOURCE_DIR}/test_proc.c)
# Warm process children (tr_proc_spec.warm), the same way.
troupe_dist_test(
  test_proc_warm dist 120 ${CMAKE_CURRENT_SOURCE_DIR}/test_proc_warm.c)

# The heart (troupe/heart.h): a watched program that hangs, is killed from
# outside and exits cleanly, with its watchers as real processes.
troupe_dist_test(test_heart dist 120 ${CMAKE_CURRENT_SOURCE_DIR}/test_heart.c)
