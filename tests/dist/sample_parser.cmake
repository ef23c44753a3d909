# The parser sample (samples/parser) as its README runs it: a parser that
# crashes on bad input, in process children under a supervisor. It passes
# when the program exits 0 (every good request answered right, every bad
# one rejected), its summary line says as much, and no parser process is
# left behind.
if(TARGET troupe-parser)
  add_test(NAME test_sample_parser
    COMMAND bash -c [=[
      out=$("$0"); rc=$?
      printf '%s\n' "$out"
      [ "$rc" -eq 0 ] || { echo "exit status $rc"; exit 1; }
      grep -Eq '^summary: good answered ([0-9]+)/\1, bad rejected ([0-9]+)/\2,' <<<"$out" ||
        { echo "no summary line of success"; exit 1; }
      for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/exe" 2>/dev/null)" = "$(readlink -f "$0")" ]; then
          echo "left running: ${p#/proc/}"; exit 1
        fi
      done
    ]=] $<TARGET_FILE:troupe-parser>)
  set_tests_properties(test_sample_parser PROPERTIES TIMEOUT 120 LABELS dist)
endif()
