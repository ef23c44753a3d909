/*
 * The observer over mutual TLS (observer_url https://...): certificates
 * made here with openssl, the client openssl s_client.
 *
 * - https:// takes the node's TLS identity (tls_ca_file, tls_cert_file,
 *   tls_key_file); without it the URL is refused (TR_EINVAL);
 * - a client with a certificate of the node's CA and the token: 200;
 *   with the certificate but no token: 401;
 * - no client certificate, or one of another CA: no HTTP answer at all
 *   (the handshake fails), and the node goes on serving.
 */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <unistd.h>

#include "test_certs.h"
#include "troupe/node.h"
#include "troupe/observer.h"

#define COOKIE "observer-tls-secret"

/* GET /api/health through openssl s_client with `cert` (NULL: none) and
 * the token or not; returns the HTTP status, 0 for no answer. */
static int get(const char *dir, int port, const char *cert, const char *token)
{
	char auth[160] = "";
	if (token != NULL)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\\r\\n",
		    token);
	char cmd[2048], client[256] = "";
	if (cert != NULL)
		snprintf(client, sizeof(client),
		    "-cert %s/%s.crt -key %s/%s.key", dir, cert, dir, cert);
	snprintf(cmd, sizeof(cmd),
	    "printf 'GET /api/health HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n%s"
	    "Connection: close\\r\\n\\r\\n' | timeout 20 openssl s_client "
	    "-quiet -connect 127.0.0.1:%d -CAfile %s/ca.pem %s 2>/dev/null",
	    auth, port, dir, client);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[512];
	int status = 0;
	while (fgets(line, sizeof(line), p) != NULL)
		if (status == 0)
			(void)sscanf(line, "HTTP/1.1 %d", &status);
	pclose(p);
	return status;
}

static void test_mutual_tls(void **state)
{
	(void)state;
	if (system("command -v openssl >/dev/null 2>&1") != 0)
		skip();
	alarm(120);
	char dir[] = "/tmp/troupe-obstls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	static const char *const names[] = {"node", "operator", "rogue", NULL};
	assert_true(tt_make_certs(dir, names));
	char ca[128], crt[128], key[128], lis[128];
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(crt, sizeof(crt), "%s/node.crt", dir);
	snprintf(key, sizeof(key), "%s/node.key", dir);
	snprintf(lis, sizeof(lis), "ipc://%s/n", dir);
	const char *l[] = {lis, NULL};
	tr_runtime *rt;
	assert_rc(tr_runtime_start(&rt, NULL), TR_OK);

	/* https:// without the node's TLS identity: refused. */
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "tls";
	o.cookie = COOKIE;
	o.listen = l;
	o.observer_url = "https://127.0.0.1:0";
	tr_node *n = NULL;
	assert_rc(tr_node_start(&n, rt, &o), TR_EINVAL);
	assert_null(n);

	o.tls_ca_file = ca;
	o.tls_cert_file = crt;
	o.tls_key_file = key;
	assert_rc(tr_node_start(&n, rt, &o), TR_OK);
	char url[96], token[TR_OBSERVER_TOKEN_SIZE];
	assert_rc(tr_node_observer_url(url, sizeof(url), n), TR_OK);
	assert_true(strncmp(url, "https://127.0.0.1:", 18) == 0);
	int port = atoi(strrchr(url, ':') + 1);
	assert_rc(tr_observer_token(token, sizeof(token), COOKIE), TR_OK);

	assert_int_equal(get(dir, port, "operator", token), 200);
	assert_int_equal(get(dir, port, "operator", NULL), 401);
	assert_int_equal(get(dir, port, NULL, token), 0);
	assert_int_equal(get(dir, port, "rogue", token), 0);
	/* Still serving. */
	assert_int_equal(get(dir, port, "operator", token), 200);

	tr_node_stop(n);
	tr_runtime_stop(rt);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mutual_tls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
