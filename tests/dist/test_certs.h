/*
 * Certificates for the TLS tests, made with openssl in a directory: a CA
 * (ca.pem, ca.key), a second one that signs rogues (rca.pem, rca.key),
 * and for each name given a key and a certificate (NAME.key, NAME.crt)
 * for CN 127.0.0.1 (subject names localhost and 127.0.0.1), signed by the
 * CA, or by the second one for a name that starts with "rogue". Each
 * certificate is good for two days.
 */
#ifndef TROUPE_TESTS_TEST_CERTS_H
#define TROUPE_TESTS_TEST_CERTS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `cmd` in `dir`, quietly; its exit status. */
static inline int tt_sh(const char *dir, const char *cmd)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
	return system(buf);
}

/* The CAs, and a certificate for each of names[] (NULL-terminated). */
static inline bool tt_make_certs(const char *dir, const char *const *names)
{
	static const char *const cmds[] = {
	    "printf 'subjectAltName=DNS:localhost,DNS:127.0.0.1,"
	    "IP:127.0.0.1\\n' > san.ext",
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
	    "-subj /CN=troupe-test-ca -keyout ca.key -out ca.pem",
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
	    "-subj /CN=rogue-ca -keyout rca.key -out rca.pem",
	    NULL};
	for (int i = 0; cmds[i] != NULL; i++)
		if (tt_sh(dir, cmds[i]) != 0)
			return false;
	for (int i = 0; names[i] != NULL; i++) {
		const char *n = names[i];
		const char *ca = strncmp(n, "rogue", 5) == 0 ? "rca" : "ca";
		char cmd[1024];
		snprintf(cmd, sizeof(cmd),
		    "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
		    "-keyout %s.key -out %s.csr && "
		    "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key "
		    "-CAcreateserial -days 2 -extfile san.ext -out %s.crt",
		    n, n, n, ca, ca, n);
		if (tt_sh(dir, cmd) != 0)
			return false;
	}
	return true;
}

#endif /* TROUPE_TESTS_TEST_CERTS_H */
