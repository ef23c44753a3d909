/*
 * The observer's web page (docs/observer.md, "The web page") in a real
 * headless Chromium, driven through chromedriver's W3C WebDriver protocol
 * (webdriver.h): a node with its observer and a supervision tree, a peer
 * connected to it, and the page opened with the token, as an operator
 * would.
 *
 * - the page loads, names the node, and its node switcher and its peers
 *   table list the peer;
 * - the Supervision pane draws the tree: the root one_for_one supervisor
 *   with its workers and a nested supervisor, that one with its own
 *   workers;
 * - a worker crashed by a message shows up as a restart: its restart
 *   count rises, it has a new pid, it is marked as just restarted;
 * - the browser's console has no error: no script error, no refused
 *   load, nothing the page's content security policy blocked;
 * - a screenshot of the page is kept in the build tree
 *   (observer-ui.png), and copied to docs/observer-ui.png when
 *   TROUPE_UPDATE_DOCS=1;
 * - and, without a browser: the page's files are served without the
 *   token, with their types and the policy headers, also with ?node= (the
 *   page is this node's); a file that is not there is 404; the API still
 *   wants the token.
 *
 * The browser test is skipped, saying so, when Chromium or chromedriver
 * is not installed (Debian: chromium, chromium-driver; deploy/setup.sh
 * installs them).
 * TROUPE_CHROMIUM and TROUPE_CHROMEDRIVER name other binaries.
 */
#define _GNU_SOURCE
#include "common.h"
#include "observer_pair.h"

#include "observer_tree.h"
#include "webdriver.h"

#include "troupe/node.h"
#include "troupe/observer.h"
#include "troupe/sup.h"

#define COOKIE "observer-ui-secret"

/* Generous bounds for a loaded two-core machine (a sanitizer build, the
 * suite beside): never timings, only how long to wait before failing. */
#define START_MS 60000
#define CALL_MS 30000
#define TREE_MS 30000
#define RESTART_MS 30000

struct env {
	struct obs_pair p;
	tr_pid root;
	const char *browser, *driver;
	struct wd wd;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	*state = e;
	const char *b = getenv("TROUPE_CHROMIUM");
	const char *d = getenv("TROUPE_CHROMEDRIVER");
	e->browser = b != NULL && b[0] != '\0' ? b : "/usr/bin/chromium";
	e->driver = d != NULL && d[0] != '\0' ? d : "/usr/bin/chromedriver";
	alarm(240);
	obs_pair_start(&e->p, "obsui", COOKIE, "alpha", "beta", true);
	obs_tree_start(e->p.rt, &e->root);
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	wd_stop(&e->wd);
	if (e->p.rt != NULL && !tr_pid_is_none(e->root))
		(void)tr_kill(e->p.rt, e->root, TR_REASON_SHUTDOWN);
	obs_pair_stop(&e->p);
	free(e);
	alarm(0);
	return 0;
}

/* What the page shows, read from its DOM (the data- attributes app.js
 * gives the tree): {"name", "nodes": [...], "status", "statusText",
 * "roots": [{pid, children: [{id, pid, restarts, recent, sup}]}]}. */
static const char *const READ_PAGE =
    "const kids = s => Array.from(s.querySelectorAll("
    "  ':scope > ul.children > li.child'));"
    "const desc = s => ({pid: s.dataset.sup, children: kids(s).map(li => {"
    "  const n = li.querySelector(':scope > .sup');"
    "  return {id: li.dataset.child, pid: li.dataset.pid,"
    "    restarts: Number(li.dataset.restarts),"
    "    recent: li.dataset.recent === '1', sup: n ? desc(n) : null};"
    "})});"
    "const st = document.querySelector('#status');"
    "return JSON.stringify({"
    "  name: document.querySelector('#node-name').textContent,"
    "  nodes: Array.from(document.querySelectorAll('#node-switch option'))"
    "    .map(o => o.value),"
    "  peers: Array.from(document.querySelectorAll('#peers [data-peer]'))"
    "    .map(r => r.dataset.peer),"
    "  status: st.dataset.state, statusText: st.textContent,"
    "  roots: Array.from(document.querySelectorAll('#sup-tree > .sup'))"
    "    .map(desc)});";

/* The page as READ_PAGE sees it: a new reference, or NULL. */
static json_t *read_page(struct env *e)
{
	json_t *v = wd_exec(&e->wd, READ_PAGE, CALL_MS);
	const char *s = json_string_value(v);
	json_t *page = s != NULL ? json_loads(s, 0, NULL) : NULL;
	json_decref(v);
	return page;
}

/* Child `id` of supervisor entry `sup` (a READ_PAGE object), or NULL. */
static json_t *page_child(json_t *sup, const char *id)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(sup, "children"), i, c)
	{
		const char *cid = json_string_value(json_object_get(c, "id"));
		if (cid != NULL && strcmp(cid, id) == 0)
			return c;
	}
	return NULL;
}

/* The root entry with child "crashy" (the node may have supervisors of
 * its own), or NULL. */
static json_t *page_root(json_t *page)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(page, "roots"), i, r)
	{
		if (page_child(r, "crashy") != NULL)
			return r;
	}
	return NULL;
}

/* Whether `text` (a pid as the page shows it, "node.slot.gen") is `p`:
 * the slot and generation are compared, as the node part is the
 * observer's numbering. */
static bool same_pid(const char *text, tr_pid p)
{
	char tail[32];
	snprintf(tail, sizeof(tail), ".%u.%u", p.slot, p.gen);
	size_t lt = text != NULL ? strlen(text) : 0, ln = strlen(tail);
	return lt > ln && strcmp(text + lt - ln, tail) == 0;
}

/* Whether the page shows the whole tree; `why` says what is missing. */
static bool tree_shown(struct env *e, json_t *page, char *why, size_t cap)
{
	json_t *root = page_root(page);
	if (root == NULL) {
		snprintf(why, cap, "no root supervisor with child crashy");
		return false;
	}
	if (!same_pid(
	        json_string_value(json_object_get(root, "pid")), e->root)) {
		snprintf(why, cap, "the root is shown as %s",
		    json_string_value(json_object_get(root, "pid")));
		return false;
	}
	const char *ids[] = {"cache", "crashy", "pool"};
	for (size_t i = 0; i < 3; i++) {
		json_t *c = page_child(root, ids[i]);
		const char *pid = json_string_value(json_object_get(c, "pid"));
		if (c == NULL || pid == NULL || pid[0] == '\0') {
			snprintf(why, cap,
			    "child %s of the root not shown running", ids[i]);
			return false;
		}
	}
	json_t *pool = json_object_get(page_child(root, "pool"), "sup");
	if (pool == NULL || !json_is_object(pool)) {
		snprintf(why, cap,
		    "the nested supervisor is not drawn inside "
		    "its parent");
		return false;
	}
	if (page_child(pool, "w1") == NULL || page_child(pool, "w2") == NULL) {
		snprintf(
		    why, cap, "the nested supervisor's workers are missing");
		return false;
	}
	return true;
}

static void dump_page(json_t *page)
{
	char *s = page != NULL ? json_dumps(page, JSON_INDENT(1)) : NULL;
	print_message("the page: %s\n", s != NULL ? s : "(nothing)");
	free(s);
}

/* One GET of `path` on the observer, with the bearer token or without;
 * the status, the header `hname`'s value into hval[cap] ("" if none),
 * and the body (malloc'ed, the caller's). */
static char *get(struct env *e, const char *path, bool token, int *status,
    const char *hname, char *hval, size_t cap)
{
	char auth[128], err[256] = "";
	snprintf(auth, sizeof(auth), "Bearer %s", e->p.token);
	const char *port = strrchr(e->p.url, ':');
	assert_non_null(port);
	struct wd_res r;
	if (wd_http(atoi(port + 1), "GET", path, token ? auth : NULL, NULL,
	        CALL_MS, &r, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	*status = r.status;
	wd_header(&r, hname, hval, cap);
	return r.body;
}

static void test_files(void **state)
{
	struct env *e = *state;
	char h[512];
	int st;
	/* The page, without the token; the same with ?node= (not sent on). */
	const char *pages[] = {"/", "/?node=beta", "/ui/", "/ui/index.html"};
	for (size_t i = 0; i < 4; i++) {
		char *b =
		    get(e, pages[i], false, &st, "Content-Type", h, sizeof(h));
		if (st != 200)
			fail_msg("%s: %d", pages[i], st);
		assert_string_equal(h, "text/html; charset=utf-8");
		assert_non_null(strstr(b, "<script src=\"/ui/app.js\">"));
		free(b);
	}
	char *b =
	    get(e, "/", false, &st, "Content-Security-Policy", h, sizeof(h));
	assert_non_null(strstr(h, "default-src 'none'"));
	assert_non_null(strstr(h, "script-src 'self'"));
	free(b);
	b = get(e, "/", false, &st, "Referrer-Policy", h, sizeof(h));
	assert_string_equal(h, "no-referrer");
	free(b);
	b = get(e, "/ui/app.js", false, &st, "Content-Type", h, sizeof(h));
	assert_int_equal(st, 200);
	assert_string_equal(h, "text/javascript; charset=utf-8");
	assert_non_null(strstr(b, "'Bearer ' + token"));
	free(b);
	b = get(e, "/ui/style.css", false, &st, "Content-Type", h, sizeof(h));
	assert_int_equal(st, 200);
	assert_string_equal(h, "text/css; charset=utf-8");
	free(b);
	const char *missing[] = {
	    "/ui/nope.js", "/ui/index.htm", "/ui/app.js/x"};
	for (size_t i = 0; i < 3; i++) {
		b = get(
		    e, missing[i], false, &st, "Content-Type", h, sizeof(h));
		if (st != 404)
			fail_msg("%s: %d", missing[i], st);
		free(b);
	}
	/* The API still wants the token, and gets it in the header. */
	b = get(e, "/api/node", false, &st, "Content-Type", h, sizeof(h));
	assert_int_equal(st, 401);
	free(b);
	b = get(e, "/api/node", true, &st, "Content-Type", h, sizeof(h));
	assert_int_equal(st, 200);
	free(b);
}

static void test_page(void **state)
{
	struct env *e = *state;
	if (!wd_have(e->browser) || !wd_have(e->driver)) {
		print_message(
		    "skipped: %s or %s is not installed (Debian: apt-get "
		    "install chromium chromium-driver)\n",
		    e->browser, e->driver);
		skip();
	}
	char log[512], png[512];
	snprintf(log, sizeof(log), "%s/observer-ui-chromedriver.log",
	    TROUPE_ARTIFACT_DIR);
	snprintf(png, sizeof(png), "%s/observer-ui.png", TROUPE_ARTIFACT_DIR);
	if (wd_start_driver(&e->wd, e->driver, log, START_MS) != 0)
		fail_msg("chromedriver: %s", e->wd.err);
	if (wd_session(&e->wd, e->browser, 1280, 900, START_MS) != 0)
		fail_msg("no browser session: %s", e->wd.err);

	char page_url[512];
	snprintf(page_url, sizeof(page_url), "%s/?token=%s", e->p.url, e->p.token);
	if (wd_navigate(&e->wd, page_url, CALL_MS) != 0)
		fail_msg("navigate: %s", e->wd.err);

	/* The page loads: its header names the node once the first answer
	 * came, and the switcher has the peer. */
	json_t *page = NULL;
	long long end = wd_now_ms() + TREE_MS;
	for (;;) {
		json_decref(page);
		page = read_page(e);
		const char *name =
		    json_string_value(json_object_get(page, "name"));
		const char *st =
		    json_string_value(json_object_get(page, "status"));
		json_t *nodes = json_object_get(page, "nodes");
		json_t *peers = json_object_get(page, "peers");
		if (name != NULL && strcmp(name, "alpha") == 0 && st != NULL &&
		    strcmp(st, "ok") == 0 && json_array_size(nodes) == 2 &&
		    json_array_size(peers) == 1)
			break;
		if (wd_now_ms() > end) {
			dump_page(page);
			fail_msg(
			    "the page did not show node alpha and its peer");
		}
		wd_sleep_ms(200);
	}
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(page, "nodes"), 0)),
	    "alpha");
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(page, "nodes"), 1)),
	    "beta");
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(page, "peers"), 0)),
	    "beta");

	/* The Supervision pane draws the tree. */
	if (wd_click(&e->wd, "[data-tab=supervision]", CALL_MS) != 0)
		fail_msg("click Supervision: %s", e->wd.err);
	char why[160] = "";
	end = wd_now_ms() + TREE_MS;
	for (;;) {
		json_decref(page);
		page = read_page(e);
		if (tree_shown(e, page, why, sizeof(why)))
			break;
		if (wd_now_ms() > end) {
			dump_page(page);
			fail_msg("the tree is not shown: %s", why);
		}
		wd_sleep_ms(200);
	}
	json_t *crashy = page_child(page_root(page), "crashy");
	json_int_t before =
	    json_integer_value(json_object_get(crashy, "restarts"));
	char old_pid[64];
	snprintf(old_pid, sizeof(old_pid), "%s",
	    json_string_value(json_object_get(crashy, "pid")));
	tr_pid victim = obs_child_pid(e->p.rt, e->root, "crashy");
	assert_true(same_pid(old_pid, victim));

	/* A crash of the worker shows up as its restart. */
	assert_rc(tr_post(e->p.rt, victim, CRASH, NULL, 0), TR_OK);
	long long crashed = wd_now_ms();
	end = crashed + RESTART_MS;
	for (;;) {
		json_decref(page);
		page = read_page(e);
		json_t *c = page_child(page_root(page), "crashy");
		const char *pid = json_string_value(json_object_get(c, "pid"));
		json_int_t n =
		    json_integer_value(json_object_get(c, "restarts"));
		if (pid != NULL && pid[0] != '\0' &&
		    strcmp(pid, old_pid) != 0 && n > before &&
		    json_is_true(json_object_get(c, "recent")))
			break;
		if (wd_now_ms() > end) {
			dump_page(page);
			fail_msg(
			    "the restart of crashy (pid %s, %lld restarts) "
			    "did not show",
			    old_pid, (long long)before);
		}
		wd_sleep_ms(200);
	}
	print_message("the restart showed %lld ms after the crash\n",
	    wd_now_ms() - crashed);
	tr_pid now = obs_child_pid(e->p.rt, e->root, "crashy");
	json_t *c = page_child(page_root(page), "crashy");
	assert_true(
	    same_pid(json_string_value(json_object_get(c, "pid")), now));
	json_decref(page);

	/* Nothing went wrong in the page: no script error, no load refused,
	 * nothing the page's security policy blocked. */
	json_t *con = wd_console(&e->wd, CALL_MS);
	if (con == NULL)
		fail_msg("the browser's console: %s", e->wd.err);
	size_t i, severe = 0;
	json_t *ent;
	json_array_foreach(con, i, ent)
	{
		const char *lv =
		    json_string_value(json_object_get(ent, "level"));
		print_message("console %s: %s\n", lv != NULL ? lv : "?",
		    json_string_value(json_object_get(ent, "message")));
		severe += lv != NULL && strcmp(lv, "SEVERE") == 0;
	}
	json_decref(con);
	assert_int_equal(severe, 0);

	/* The screenshot: a test artifact, and the docs' picture on demand. */
	long bytes = wd_screenshot(&e->wd, png, CALL_MS);
	if (bytes < 0)
		fail_msg("screenshot: %s", e->wd.err);
	assert_true(bytes > 1000);
	print_message("screenshot: %s (%ld bytes)\n", png, bytes);
	const char *upd = getenv("TROUPE_UPDATE_DOCS");
	if (upd != NULL && strcmp(upd, "1") == 0) {
		char cmd[1200];
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s/docs/observer-ui.png'",
		    png, TROUPE_SOURCE_DIR);
		assert_int_equal(system(cmd), 0);
		print_message("copied to docs/observer-ui.png\n");
	}

	/* The Actors pane: sorted by messages handled, the table has the
	 * root supervisor; its page (a click on its row) shows its links,
	 * which are its children. */
	if (wd_click(&e->wd, "[data-tab=actors]", CALL_MS) != 0)
		fail_msg("click Actors: %s", e->wd.err);
	if (wd_click(&e->wd, "#actors th[data-sort=handled]", CALL_MS) != 0)
		fail_msg("sort by handled: %s", e->wd.err);
	char rootpid[48], sel[96], script[512];
	snprintf(rootpid, sizeof(rootpid), "%u.%u.%u", e->root.node,
	    e->root.slot, e->root.gen);
	snprintf(sel, sizeof(sel), "#actors tr[data-actor='%s']", rootpid);
	/* Found and clicked in one step: the table is drawn anew at every
	 * refresh, so an element found in one call may be gone by the
	 * next. */
	snprintf(script, sizeof(script),
	    "const r = document.querySelector(\"%s\");"
	    "if (r === null) return false; r.click(); return true;",
	    sel);
	for (end = wd_now_ms() + TREE_MS;;) {
		json_t *v = wd_exec(&e->wd, script, CALL_MS);
		bool yes = json_is_true(v);
		json_decref(v);
		if (yes)
			break;
		if (wd_now_ms() > end)
			fail_msg("the actor table has no row %s", rootpid);
		wd_sleep_ms(200);
	}
	snprintf(script, sizeof(script),
	    "const p = document.querySelector('#actor-page');"
	    "return p && !p.hidden && p.dataset.actor === '%s' && "
	    "p.dataset.alive === '1' && p.textContent.includes('app_sup') "
	    "? p.textContent : null;",
	    rootpid);
	for (end = wd_now_ms() + TREE_MS;;) {
		json_t *v = wd_exec(&e->wd, script, CALL_MS);
		bool yes = json_is_string(v);
		if (yes)
			print_message("the actor page: %.200s\n", json_string_value(v));
		json_decref(v);
		if (yes)
			break;
		if (wd_now_ms() > end)
			fail_msg("the actor page of %s did not show", rootpid);
		wd_sleep_ms(200);
	}

	/* And its picture. */
	char png2[1100];
	snprintf(png2, sizeof(png2), "%.*s-actors.png", (int)(strlen(png) - 4), png);
	bytes = wd_screenshot(&e->wd, png2, CALL_MS);
	if (bytes < 0)
		fail_msg("screenshot: %s", e->wd.err);
	if (upd != NULL && strcmp(upd, "1") == 0) {
		char cmd[2300];
		snprintf(cmd, sizeof(cmd),
		    "cp '%s' '%s/docs/observer-ui-actors.png'", png2,
		    TROUPE_SOURCE_DIR);
		assert_int_equal(system(cmd), 0);
	}

	/* The switcher shows another node through this endpoint: beta, which
	 * has no supervisor. */
	json_t *v = wd_exec(&e->wd,
	    "const s = document.querySelector('#node-switch');"
	    "s.value = 'beta'; s.dispatchEvent(new Event('change'));"
	    "return s.value;",
	    CALL_MS);
	assert_string_equal(json_string_value(v), "beta");
	json_decref(v);
	if (wd_click(&e->wd, "[data-tab=supervision]", CALL_MS) != 0)
		fail_msg("click Supervision: %s", e->wd.err);
	for (end = wd_now_ms() + TREE_MS;;) {
		v = wd_exec(&e->wd,
		    "const t = document.querySelector('#sup-tree');"
		    "return document.querySelector('#node-name').textContent"
		    " === 'beta' && t.querySelector('.sup') === null &&"
		    " t.textContent.includes('no supervisor');",
		    CALL_MS);
		bool yes = json_is_true(v);
		json_decref(v);
		if (yes)
			break;
		if (wd_now_ms() > end)
			fail_msg("the page did not switch to node beta");
		wd_sleep_ms(200);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
