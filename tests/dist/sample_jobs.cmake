# The cluster sample (samples/cluster) run as its README says: three node
# processes, the dispatcher's node killed and started again while the
# client's jobs go on; it passes when every job is done.
if(TARGET troupe-jobs)
  add_test(NAME test_sample_jobs
    COMMAND bash ${PROJECT_SOURCE_DIR}/samples/cluster/run.sh $<TARGET_FILE:troupe-jobs>)
  set_tests_properties(test_sample_jobs PROPERTIES TIMEOUT 180 LABELS dist)
endif()
