/*
 * The parser of troupe-parser: the kind of C code that should not run in
 * the same process as everything else. It turns a request of the form
 * "key=value;key=value" into a line such as "2 fields: a=1 b=x y".
 *
 * It has three bugs, on purpose, each marked BUG in parse.c and listed in
 * samples/parser/README.md:
 *   - a key of more than PARSE_KEY_MAX bytes overruns a fixed buffer onto
 *     the pointer the value is then written through: SIGSEGV;
 *   - a '%' not followed by two hex digits trips an assertion that stays
 *     in release builds: abort(), SIGABRT;
 *   - a value that starts with a tab makes a loop spin for ever.
 * Input it rejects the ordinary way (a field without '=', an empty key, a
 * value too long) gets an answer that starts with "invalid: ".
 */
#ifndef TROUPE_SAMPLE_PARSE_H
#define TROUPE_SAMPLE_PARSE_H

#include <stddef.h>

/* The longest key the parser's buffer holds, and the longest value. */
#define PARSE_KEY_MAX 16
#define PARSE_VALUE_MAX 256

/* Parses `len` bytes at `in` and writes the answer, NUL-terminated and
 * truncated to `cap` bytes (cap > 0), into `out`. Returns the answer's
 * length. It crashes or never returns on the inputs listed above: call it
 * in a process of its own only. It keeps no state: thread-safe. */
size_t parse_request(const char *in, size_t len, char *out, size_t cap);

#endif /* TROUPE_SAMPLE_PARSE_H */
