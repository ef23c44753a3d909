/*
 * A small W3C WebDriver client for tests: starts chromedriver as a child
 * process (in a process group of its own, on a port it picks), opens a
 * session of headless Chromium, and speaks WebDriver's HTTP protocol over
 * a plain socket (wd_http), with jansson for the JSON. Every request is
 * bounded; wd_stop ends the session, kills what is left of the group and
 * reaps it, also after a failed assertion (call it from the teardown).
 *
 * The test process becomes a child subreaper (prctl), so that Chromium's
 * processes, orphaned when chromedriver exits, are reparented to it and
 * reaped here rather than left behind.
 */
#ifndef TROUPE_TESTS_WEBDRIVER_H
#define TROUPE_TESTS_WEBDRIVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http_client.h"

extern char **environ;

struct wd {
	pid_t pid; /* chromedriver, and its process group; 0: none */
	int port;
	char session[128];
	char profile[64]; /* Chromium's --user-data-dir, removed by wd_stop */
	char log[512];    /* chromedriver's output */
	char err[1024];   /* the last error, for messages */
};

/* The group of the running chromedriver, for the alarm handler. */
static volatile pid_t wd_group;

static void wd_on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "webdriver: the test ran out of time\n";
	if (wd_group > 0)
		kill(-wd_group, SIGKILL);
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}


static void wd_sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* Whether `path` is an executable file. */
static bool wd_have(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

static json_t *wd_call(struct wd *w, const char *method, const char *path,
    json_t *body, int timeout_ms);

/* The port chromedriver says it listens on, from its log; 0: not yet. */
static int wd_log_port(const char *log)
{
	FILE *f = fopen(log, "r");
	if (f == NULL)
		return 0;
	char line[512];
	int port = 0;
	while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, "started successfully on port ");
		if (p != NULL)
			port =
			    atoi(p + strlen("started successfully on port "));
	}
	fclose(f);
	return port;
}

/* Starts `driver` (chromedriver) with its output in `log`, and waits (at
 * most `wait_ms`) for its port. 0, or -1 with w->err set. */
static int wd_start_driver(
    struct wd *w, const char *driver, const char *log, int wait_ms)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->log, sizeof(w->log), "%s", log);
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGALRM, wd_on_alarm);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(
	    &fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	char *argv[] = {(char *)driver, "--port=0", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, driver, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		snprintf(w->err, sizeof(w->err), "spawn %s: %s", driver,
		    strerror(rc));
		return -1;
	}
	w->pid = pid;
	wd_group = pid;
	long long end = wd_now_ms() + wait_ms;
	while ((w->port = wd_log_port(log)) == 0) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			w->pid = 0;
			wd_group = 0;
			snprintf(w->err, sizeof(w->err),
			    "%.200s exited (status %d) before listening; see "
			    "%.300s",
			    driver, st, log);
			return -1;
		}
		if (wd_now_ms() > end) {
			snprintf(w->err, sizeof(w->err),
			    "%.200s printed no port in %d ms; see %.300s",
			    driver, wait_ms, log);
			return -1;
		}
		wd_sleep_ms(50);
	}
	/* Ready when its /status says so (it may print the port a moment
	 * before it accepts). */
	for (;;) {
		json_t *v = wd_call(w, "GET", "/status", NULL, 2000);
		bool ready = json_is_true(json_object_get(v, "ready"));
		json_decref(v);
		if (ready)
			return 0;
		if (wd_now_ms() > end) {
			snprintf(w->err, sizeof(w->err),
			    "%.200s on port %d is not ready after %d ms; see "
			    "%.300s",
			    driver, w->port, wait_ms, log);
			return -1;
		}
		wd_sleep_ms(50);
	}
}


/* One request to chromedriver: `method` `path` with `body` (borrowed,
 * NULL: none), bounded by `timeout_ms`. Returns the answer's "value"
 * (a new reference) when the status is 200, else NULL with w->err. */
static json_t *wd_call(struct wd *w, const char *method, const char *path,
    json_t *body, int timeout_ms)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	struct wd_res r;
	w->err[0] = '\0';
	int rc = wd_http(w->port, method, path, NULL, text, timeout_ms, &r,
	    w->err, sizeof(w->err));
	free(text);
	if (rc != 0)
		return NULL;
	json_t *all = json_loadb(r.body, r.len, 0, NULL);
	json_t *v = json_object_get(all, "value");
	json_t *value = NULL;
	if (r.status == 200 && v != NULL) {
		value = json_incref(v);
	} else {
		json_t *msg = json_object_get(v, "message");
		snprintf(w->err, sizeof(w->err), "%s %s: %d %.400s", method,
		    path, r.status,
		    msg != NULL ? json_string_value(msg) : "(no message)");
	}
	json_decref(all);
	free(r.body);
	return value;
}

/* Opens a session of headless `browser`, its window `width` x `height`;
 * its profile in a new temporary directory. 0, or -1 with w->err. */
static int wd_session(
    struct wd *w, const char *browser, int width, int height, int timeout_ms)
{
	snprintf(w->profile, sizeof(w->profile), "/tmp/troupe-wd-XXXXXX");
	if (mkdtemp(w->profile) == NULL) {
		snprintf(
		    w->err, sizeof(w->err), "mkdtemp: %s", strerror(errno));
		w->profile[0] = '\0';
		return -1;
	}
	char dir[96], size[64];
	snprintf(dir, sizeof(dir), "--user-data-dir=%s", w->profile);
	snprintf(size, sizeof(size), "--window-size=%d,%d", width, height);
	/* As root (a container, CI) Chromium needs --no-sandbox. */
	json_t *args = json_pack("[s, s, s, s, s, s, s, s, s]",
	    "--headless=new", "--no-sandbox", "--disable-gpu",
	    "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
	    "--disable-crash-reporter", dir, size);
	/* The browser's console is kept, for wd_console. */
	json_t *caps = json_pack("{s:{s:{s:s, s:{s:s, s:o}, s:{s:s}}}}",
	    "capabilities", "alwaysMatch", "browserName", "chrome",
	    "goog:chromeOptions", "binary", browser, "args", args,
	    "goog:loggingPrefs", "browser", "ALL");
	json_t *v = wd_call(w, "POST", "/session", caps, timeout_ms);
	json_decref(caps);
	const char *id = json_string_value(json_object_get(v, "sessionId"));
	if (id != NULL)
		snprintf(w->session, sizeof(w->session), "%s", id);
	json_decref(v);
	return id != NULL ? 0 : -1;
}

/* A request within the session: "/session/ID" + `sub`. */
static json_t *wd_scall(struct wd *w, const char *method, const char *sub,
    json_t *body, int timeout_ms)
{
	char path[512];
	snprintf(path, sizeof(path), "/session/%s%s", w->session, sub);
	return wd_call(w, method, path, body, timeout_ms);
}

static int wd_navigate(struct wd *w, const char *url, int timeout_ms)
{
	json_t *b = json_pack("{s:s}", "url", url);
	json_t *v = wd_scall(w, "POST", "/url", b, timeout_ms);
	json_decref(b);
	int rc = v != NULL ? 0 : -1;
	json_decref(v);
	return rc;
}

/* Runs `script` (a function body) in the page; its return value, a new
 * reference, or NULL with w->err. */
static json_t *wd_exec(struct wd *w, const char *script, int timeout_ms)
{
	json_t *b = json_pack("{s:s, s:[]}", "script", script, "args");
	json_t *v = wd_scall(w, "POST", "/execute/sync", b, timeout_ms);
	json_decref(b);
	return v;
}

/* Clicks the first element that matches CSS selector `css`. */
static int wd_click(struct wd *w, const char *css, int timeout_ms)
{
	json_t *b =
	    json_pack("{s:s, s:s}", "using", "css selector", "value", css);
	json_t *el = wd_scall(w, "POST", "/element", b, timeout_ms);
	json_decref(b);
	const char *id = json_string_value(
	    json_object_get(el, "element-6066-11e4-a52e-4f735466cecf"));
	int rc = -1;
	if (id != NULL) {
		char sub[256];
		snprintf(sub, sizeof(sub), "/element/%s/click", id);
		json_t *e = json_object();
		json_t *v = wd_scall(w, "POST", sub, e, timeout_ms);
		json_decref(e);
		rc = v != NULL ? 0 : -1;
		json_decref(v);
	}
	json_decref(el);
	return rc;
}

/* The browser console's entries since the last call (chromedriver's
 * log extension): an array of {level, message, timestamp}, a new
 * reference, or NULL with w->err. Script errors, refused loads and
 * content-security-policy violations are level "SEVERE". */
static json_t *wd_console(struct wd *w, int timeout_ms)
{
	json_t *b = json_pack("{s:s}", "type", "browser");
	json_t *v = wd_scall(w, "POST", "/se/log", b, timeout_ms);
	json_decref(b);
	return v;
}

static int wd_b64(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Takes a screenshot of the page into the PNG file `path`; its bytes, or
 * -1 with w->err. */
static long wd_screenshot(struct wd *w, const char *path, int timeout_ms)
{
	json_t *v = wd_scall(w, "GET", "/screenshot", NULL, timeout_ms);
	const char *s = json_string_value(v);
	if (s == NULL) {
		json_decref(v);
		return -1;
	}
	size_t n = strlen(s);
	unsigned char *png = malloc(n / 4 * 3 + 3);
	size_t len = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; png != NULL && i < n; i++) {
		int d = wd_b64((unsigned char)s[i]);
		if (d < 0)
			continue; /* padding, line breaks */
		acc = (acc << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			png[len++] = (unsigned char)(acc >> bits);
		}
	}
	json_decref(v);
	FILE *f = png != NULL ? fopen(path, "wb") : NULL;
	bool ok = f != NULL && fwrite(png, 1, len, f) == len;
	if (f != NULL && fclose(f) != 0)
		ok = false;
	free(png);
	if (!ok) {
		snprintf(w->err, sizeof(w->err), "writing %.400s failed", path);
		return -1;
	}
	return (long)len;
}

/* Ends the session (if any), then chromedriver and whatever of its
 * process group is left, reaps them (bounded), and removes the profile.
 * Safe to call twice, and on a w that never started. */
static void wd_stop(struct wd *w)
{
	if (w->session[0] != '\0') {
		json_t *v = wd_scall(w, "DELETE", "", NULL, 15000);
		json_decref(v);
		w->session[0] = '\0';
	}
	if (w->pid > 0) {
		pid_t g = w->pid;
		kill(-g, SIGTERM);
		long long end = wd_now_ms() + 5000;
		int st;
		while (waitpid(g, &st, WNOHANG) == 0 && wd_now_ms() < end)
			wd_sleep_ms(20);
		kill(-g, SIGKILL);
		(void)waitpid(g, &st, WNOHANG);
		/* What is left of the group (Chromium's processes, orphaned
		 * to this subreaper): killed, then reaped, for at most 10 s. */
		end = wd_now_ms() + 10000;
		while (wd_now_ms() < end) {
			pid_t r = waitpid(-g, &st, WNOHANG);
			if (r > 0)
				continue;
			if (r < 0 && errno == ECHILD && kill(-g, 0) != 0)
				break;
			kill(-g, SIGKILL);
			wd_sleep_ms(20);
		}
		w->pid = 0;
		wd_group = 0;
	}
	if (w->profile[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->profile);
		(void)!system(cmd);
		w->profile[0] = '\0';
	}
}

#endif /* TROUPE_TESTS_WEBDRIVER_H */
