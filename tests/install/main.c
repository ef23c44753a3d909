/*
 * A program outside the troupe tree, built against an installed troupe: it
 * starts a runtime, spawns an actor that answers requests, calls it from
 * main and checks the reply. Exit status 0 means the installed headers and
 * libraries work.
 */
#include <troupe/info.h>
#include <troupe/troupe.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { MSG_ADD_ONE = 1, MSG_RESULT = 2 };

static int adder_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)state;
	if (msg->type != MSG_ADD_ONE || msg->size != sizeof(int64_t))
		return 1; /* an unexpected message is a bug: crash */
	int64_t n;
	memcpy(&n, msg->data, sizeof n);
	n += 1;
	return tr_reply(ctx, msg, MSG_RESULT, &n, sizeof n) == TR_OK ? 0 : 1;
}

static const tr_behaviour adder = {
    .name = "adder",
    .handle = adder_handle,
};

int main(void)
{
	/* The installed headers carry the generated version, and the library
	 * found at run time is that version. */
	if (tr_version() != TR_VERSION ||
	    strcmp(tr_version_string(), TR_VERSION_STRING) != 0) {
		fprintf(stderr, "version: headers %s, library %s\n",
		    TR_VERSION_STRING, tr_version_string());
		return 1;
	}

	tr_runtime_opts opts;
	tr_runtime_opts_init(&opts);
	opts.schedulers = 2;

	tr_runtime *rt;
	int rv = tr_runtime_start(&rt, &opts);
	if (rv != TR_OK) {
		fprintf(stderr, "tr_runtime_start: %s\n", tr_strerror(rv));
		return 1;
	}

	int status = 1;
	tr_pid pid;
	rv = tr_spawn(&pid, rt, &adder, NULL, NULL);
	if (rv != TR_OK) {
		fprintf(stderr, "tr_spawn: %s\n", tr_strerror(rv));
		goto out;
	}

	int64_t n = 41;
	tr_msg *reply = NULL;
	rv = tr_call(&reply, rt, pid, MSG_ADD_ONE, &n, sizeof n, 5000);
	if (rv != TR_OK) {
		fprintf(stderr, "tr_call: %s\n", tr_strerror(rv));
		goto out;
	}
	int64_t got = 0;
	if (reply->type == MSG_RESULT && reply->size == sizeof got)
		memcpy(&got, reply->data, sizeof got);
	tr_msg_free(reply);
	if (got != 42) {
		fprintf(stderr, "expected 42, got %lld\n", (long long)got);
		goto out;
	}
	/* The adder has handled the request (and tr_call's monitor), and
	 * shows in the table. */
	tr_actor_info info;
	tr_actor_info_init(&info);
	char text[TR_PID_TEXT_MAX];
	rv = tr_actor_info_get(&info, rt, pid);
	if (rv != TR_OK || info.handled < 2 ||
	    strcmp(info.behaviour, "adder") != 0 ||
	    tr_pid_format(text, sizeof text, pid) <= 0) {
		fprintf(stderr, "tr_actor_info_get: %s\n", tr_strerror(rv));
		goto out;
	}
	printf("troupe %d.%d.%d: 41 + 1 = %lld\n", TR_VERSION_MAJOR,
	    TR_VERSION_MINOR, TR_VERSION_PATCH, (long long)got);
	status = 0;
out:
	tr_runtime_stop(rt);
	return status;
}
