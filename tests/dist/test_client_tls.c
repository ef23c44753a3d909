/*
 * The client endpoint over TLS, and the shell recipe of docs/client.md run
 * as written with protoc, openssl and nngcat (plain and over TLS), with
 * the README's copy of it checked against the doc.
 */
#include "common.h"

#include "client_fx.h"
#include "test_certs.h"

/* ---- TLS ----------------------------------------------------------------- */

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *s;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	return s;
}

static bool have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* The PEM text of the fixture's certificate, key and CA. */
struct pems {
	char *cert, *key, *ca;
};

static struct pems tls_files(struct fx *fx)
{
	char path[400];
	struct pems p;

	static const char *const names[] = {"node", NULL};
	assert_true(tt_make_certs(fx->dir, names));
	snprintf(path, sizeof(path), "%s/node.crt", fx->dir);
	p.cert = slurp(path);
	snprintf(path, sizeof(path), "%s/node.key", fx->dir);
	p.key = slurp(path);
	snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
	p.ca = slurp(path);
	return p;
}

static void pems_free(struct pems *p)
{
	free(p->cert);
	free(p->key);
	free(p->ca);
}

/* A req socket dialling over TLS that checks the node's certificate
 * against `ca` (and its name, 127.0.0.1, taken from the URL). */
static nng_socket req_open_tls(const char *url, const char *ca)
{
	nng_tls_config *cfg;
	nng_dialer d;
	nng_socket s;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(nng_dialer_create(&d, s, url), 0);
	assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_chain(cfg, ca, NULL), 0);
	assert_int_equal(
	    nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
	assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	nng_tls_config_free(cfg);
	assert_int_equal(nng_dialer_start(d, 0), 0);
	return s;
}

/* tls+tcp:// with the node's certificate: a client that checks it gets
 * its answers; a plain tcp client gets nothing from a TLS port. */
static void test_endpoint_tls(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o = opts_for("tls+tcp://127.0.0.1:0");
	Troupe__Wire__ClientReply *rep;
	struct pems p;
	struct req r;
	char plain[340];
	nng_socket s;
	void *buf = NULL;
	size_t n;

	if (!have("openssl")) {
		skip();
	}
	p = tls_files(fx);
	o.tls_cert = p.cert;
	o.tls_key = p.key;
	fx_start_with(fx, &o);
	assert_non_null(strstr(tr__client_url(fx->client), "tls+tcp://"));
	s = req_open_tls(tr__client_url(fx->client), p.ca);
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	nng_close(s);

	snprintf(plain, sizeof(plain), "tcp://%s",
	    tr__client_url(fx->client) + strlen("tls+tcp://"));
	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 500), 0);
	assert_int_equal(nng_dial(s, plain, NULL, NNG_FLAG_NONBLOCK), 0);
	r = req_at(wall_ms());
	{
		size_t len;
		uint8_t *f = frame_of(&len, &r, COOKIE);

		/* The send times out (no pipe comes up), or the request
		 * is never answered. */
		if (nng_send(s, f, len, 0) == 0)
			assert_int_equal(nng_recv(s, &buf, &n, NNG_FLAG_ALLOC),
			    NNG_ETIMEDOUT);
		free(f);
	}
	nng_close(s);
	assert_int_equal(atomic_load(&echo_handled), 1);
	pems_free(&p);
	fx_stop(fx);
}

/* ---- the shell recipe of docs/client.md ---------------------------------- */

static bool have_tools(void)
{
	return have("protoc") && have("openssl") && have("nngcat") &&
	       have("timeout");
}

/* Appends the ```sh block that follows "<!-- recipe: NAME -->" in the
 * document to `out`, as it stands. */
static void append_block(FILE *out, const char *doc, const char *name)
{
	char marker[64];
	const char *p, *start, *end;

	snprintf(marker, sizeof(marker), "<!-- recipe: %s -->\n```sh\n", name);
	p = strstr(doc, marker);
	if (p == NULL)
		fail_msg("docs/client.md has no recipe block \"%s\"", name);
	start = p + strlen(marker);
	end = strstr(start, "```\n");
	assert_non_null(end);
	fwrite(start, 1, (size_t)(end - start), out);
}

/* Writes a script made of the named blocks, runs it in the fixture's
 * directory with URL, COOKIE, NODE, PROTO_DIR (and CA, if given) set,
 * bounded by `timeout`, and returns what it printed. */
static char *run_recipe(struct fx *fx, const char *cookie, const char *ca,
    const char *const *blocks)
{
	char path[600], cmd[2048], *doc = slurp(TT_CLIENT_DOC);
	char *outp = NULL;
	size_t outn = 0;
	FILE *fp, *out;
	char chunk[512];
	size_t n;

	snprintf(path, sizeof(path), "%s/recipe.sh", fx->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("set -eu\n", fp);
	for (size_t i = 0; blocks[i] != NULL; i++)
		append_block(fp, doc, blocks[i]);
	fclose(fp);
	free(doc);

	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && URL='%s' COOKIE='%s' NODE='%s' PROTO_DIR='%s' "
	    "CA='%s' timeout 60 bash ./recipe.sh 2>&1",
	    fx->dir, fx->url, cookie, NODE, TT_PROTO_DIR, ca != NULL ? ca : "");
	fp = popen(cmd, "r");
	assert_non_null(fp);
	out = open_memstream(&outp, &outn);
	assert_non_null(out);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		fwrite(chunk, 1, n, out);
	fclose(out);
	if (pclose(fp) != 0)
		fail_msg("the recipe failed:\n%s", outp);
	return outp;
}

static const char *const full[] = {
    "settings", "request", "encode", "key", "sign", "send", "decode", NULL};
static const char *const resend[] = {"settings", "send", "decode", NULL};
static const char *const full_tls[] = {
    "settings", "request", "encode", "key", "sign", "send-tls", "decode", NULL};

static void assert_contains(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("expected \"%s\" in:\n%s", want, text);
}

static void test_recipe(void **state)
{
	struct fx *fx = *state;
	char *out;

	if (!have_tools()) {
		skip();
	}
	fx_start(fx);

	out = run_recipe(fx, COOKIE, NULL, full);
	assert_contains(out, "type: 1\n");
	assert_contains(out, "payload: \"echo: hello\"\n");
	assert_null(strstr(out, "error:"));
	free(out);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* The same frame.bin sent again: a replay. */
	out = run_recipe(fx, COOKIE, NULL, resend);
	assert_contains(out, "error: -7\n");
	assert_contains(out, "replayed request");
	free(out);

	/* The whole recipe with a cookie the node does not have. */
	out = run_recipe(fx, "wrong cookie", NULL, full);
	assert_contains(out, "error: -1\n");
	assert_contains(out, "bad signature");
	free(out);

	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 1);
	fx_stop(fx);
}

/* The README's copy of the recipe is the recipe: after its one line of
 * settings, the very blocks of docs/client.md from "request" to
 * "decode". */
static void test_readme_recipe(void **state)
{
	static const char *const blocks[] = {
	    "request", "encode", "key", "sign", "send", "decode", NULL};
	char *doc = slurp(TT_CLIENT_DOC), *readme = slurp(TT_README);
	char *want = NULL;
	size_t wantn = 0;
	const char *sec, *start, *end;
	FILE *out;

	(void)state;
	out = open_memstream(&want, &wantn);
	assert_non_null(out);
	for (size_t i = 0; blocks[i] != NULL; i++)
		append_block(out, doc, blocks[i]);
	fclose(out);
	sec = strstr(readme, "### Programs that are not nodes\n");
	assert_non_null(sec);
	start = strstr(sec, "```sh\nURL=");
	assert_non_null(start);
	start = strchr(start + strlen("```sh\n"), '\n') + 1;
	end = strstr(start, "```\n");
	assert_non_null(end);
	if ((size_t)(end - start) != wantn || memcmp(start, want, wantn) != 0)
		fail_msg("README.md's recipe differs from docs/client.md's:\n"
		         "%.*s\nwant:\n%s",
		    (int)(end - start), start, want);
	free(want);
	free(doc);
	free(readme);
}

/* The recipe over tls+tcp://, with nngcat checking the node's
 * certificate against the CA. */
static void test_recipe_tls(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o = opts_for("tls+tcp://127.0.0.1:0");
	char ca[400], *out;
	struct pems p;

	if (!have_tools()) {
		skip();
	}
	p = tls_files(fx);
	o.tls_cert = p.cert;
	o.tls_key = p.key;
	fx_start_with(fx, &o);
	snprintf(fx->url, sizeof(fx->url), "%s", tr__client_url(fx->client));
	snprintf(ca, sizeof(ca), "%s/ca.pem", fx->dir);
	out = run_recipe(fx, COOKIE, ca, full_tls);
	assert_contains(out, "payload: \"echo: hello\"\n");
	assert_null(strstr(out, "error:"));
	free(out);
	pems_free(&p);
	fx_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_tls, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_recipe, fx_setup, fx_teardown),
	    cmocka_unit_test(test_readme_recipe),
	    cmocka_unit_test_setup_teardown(
	        test_recipe_tls, fx_setup, fx_teardown),
	};

	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
