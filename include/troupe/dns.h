/*
 * troupe DNS discovery: a seed source (node.h, tr_node_seed_source) that
 * finds the members of a cluster in DNS, so that a node started by an
 * orchestrator finds the others with no list.
 *
 * Two kinds of lookup, both through the system's resolver (glibc's
 * getaddrinfo, and libresolv's res_nquery for SRV): nothing here parses
 * a DNS packet by hand but the answer section libresolv splits.
 *
 *   TR_NODE_DNS_A    the A and AAAA records of one name (a Kubernetes
 *                    headless Service: one record per ready pod), each
 *                    address with the port given: "tcp://10.1.2.3:4100",
 *                    "tcp://[fd00::7]:4100";
 *   TR_NODE_DNS_SRV  the SRV records of a name
 *                    ("_troupe._tcp.troupe.default.svc.cluster.local"):
 *                    each target's addresses (getaddrinfo) with the
 *                    record's port.
 *
 * A tr_node_dns looks the name up on a thread of its own, at once and then
 * every interval_ms, and keeps the URLs of its last good answer; the node
 * asks it (the `resolve` of tr_node_dns_source) from its control thread
 * and gets those URLs without waiting, so a slow or silent DNS server
 * never delays the node's heartbeats. A failed lookup keeps the previous
 * URLs. tr_node_dns_alloc makes the first lookup before it returns, so a
 * node started right after has the members DNS knows at once.
 *
 * The environment variable TROUPE_DNS does all of this without code:
 * tr_node_start reads it when tr_node_opts.seed_source is NULL
 * (docs/distribution.md, "Discovery").
 *
 * Bounds: at most max_urls URLs per answer (64 by default, 1024 at most),
 * as many SRV targets looked up; what is over, and answers libresolv
 * cannot parse, are counted (tr_node_dns_stats) and logged at most once
 * per 10 s through log_rt's log.
 *
 * No nng, protobuf-c or resolver type appears here.
 */
#ifndef TROUPE_DNS_H
#define TROUPE_DNS_H

#include "troupe/node.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_node_dns tr_node_dns;

/* Kinds of lookup (tr_node_dns_opts.kind). */
#define TR_NODE_DNS_A 0
#define TR_NODE_DNS_SRV 1

/* The longest DNS name taken (RFC 1035: 253 characters in text). */
#define TR_NODE_DNS_NAME_MAX 253

/* Options of a DNS source. Versioned (troupe.h, "Versioned structs"):
 * fill with tr_node_dns_opts_init. */
typedef struct tr_node_dns_opts {
	uint32_t struct_size; /* sizeof(tr_node_dns_opts), by the _init */
	const char *name;     /* the name to look up, 1..253 bytes; copied */
	int32_t kind;         /* TR_NODE_DNS_A (0, the default) or
	                       * TR_NODE_DNS_SRV */
	uint32_t port;        /* TR_NODE_DNS_A: the members' port, 1..65535
	                       * (required); TR_NODE_DNS_SRV: must be 0 (the
	                       * records carry the ports) */
	const char *scheme;   /* "tcp" (NULL: the default) or "tls+tcp" */
	int32_t family;       /* 0: IPv4 and IPv6, 4: IPv4 only, 6: IPv6
	                       * only */
	uint32_t interval_ms; /* looked up again every; 0 = 5000 ms, at
	                       * least 100 */
	uint32_t max_urls;    /* URLs kept from one answer; 0 = 64, at most
	                       * 1024 */
	tr_runtime *log_rt;   /* optional: the runtime whose log gets the
	                       * failures and refusals (rate-limited) */
} tr_node_dns_opts;

/* The size of the first version of tr_node_dns_opts. */
#define TR_NODE_DNS_OPTS_V1_SIZE TR_STRUCT_END(tr_node_dns_opts, log_rt)

static inline void tr_node_dns_opts_init(tr_node_dns_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->struct_size = (uint32_t)sizeof(*o);
}

/* Reads a TROUPE_DNS value into `o` (initialised by the caller; its
 * other fields are left as they are):
 *
 *   [SCHEME://]NAME:PORT     A/AAAA records of NAME, port PORT
 *   srv:[SCHEME://]NAME      SRV records of NAME
 *
 * SCHEME is tcp or tls+tcp. o->name points into `buf` (cap bytes,
 * TR_NODE_DNS_NAME_MAX + 1 are always enough), o->scheme to a static
 * string. Errors: TR_EINVAL (NULL, an empty or too long name, a port
 * that is not 1..65535, an unknown scheme, `buf` too small). Thread-safe. */
TR_API int tr_node_dns_parse(
    tr_node_dns_opts *o, char *buf, size_t cap, const char *spec);

/* Makes a DNS source: checks `o`, makes the first lookup (it may block
 * for as long as the system resolver's timeout: resolv.conf's `timeout`
 * times `attempts`, 5 s x 2 by default; a failure there is not an
 * error, the next lookups may succeed), and starts the thread that looks
 * the name up again every interval_ms. Errors: TR_EINVAL (d or o NULL,
 * o not initialised, no name or one longer than 253 bytes, a port out of
 * range or given for SRV, an unknown kind, scheme or family, interval_ms
 * below 100, max_urls above 1024), TR_ENOTSUP (o from a newer troupe
 * with an option this library does not have), TR_ENOMEM (memory or the
 * thread). On success the caller owns *d: free it with tr_node_dns_free
 * after tr_node_stop of every node that uses it. */
TR_API int tr_node_dns_alloc(tr_node_dns **d, const tr_node_dns_opts *o);

/* Stops the source's thread (waiting for a lookup in progress, which the
 * system resolver's timeout bounds) and frees it. NULL is ignored. Not
 * while a node still reads it. */
TR_API void tr_node_dns_free(tr_node_dns *d);

/* The seed source of `d`, for tr_node_opts.seed_source, with `d` as
 * tr_node_opts.seed_user. Its `resolve` adds the URLs of the last good
 * answer and never blocks on DNS; the node asks it every 250 ms (at most
 * once per node tick). The same for every `d`; valid forever. */
TR_API const tr_node_seed_source *tr_node_dns_source(void);

/* One lookup now, on the calling thread, without a tr_node_dns: adds
 * each URL of the answer through add(sink, url) (as a seed source's
 * resolve does; the string is valid during the call only). Blocks for as
 * long as the lookup takes. Errors: TR_EINVAL (as tr_node_dns_alloc, or
 * add NULL), TR_ENOENT (the name has no such records, or the lookup
 * failed: no answer, a server failure), TR_ENOMEM. Thread-safe. */
TR_API int tr_node_dns_lookup(
    const tr_node_dns_opts *o, tr_node_seed_add_fn *add, void *sink);

/* What a DNS source did. Versioned: tr_node_dns_stats_init before each
 * get. */
typedef struct tr_node_dns_stats {
	uint32_t struct_size; /* by the _init */
	uint32_t urls;        /* URLs of the last good answer */
	uint64_t lookups;     /* finished, good or not */
	uint64_t failures;    /* of which failed (the URLs before kept) */
	uint64_t refused;     /* records not taken: over max_urls, an SRV
	                       * record libresolv could not parse, a target
	                       * "." (no service), an address that does not
	                       * make a URL */
} tr_node_dns_stats;

#define TR_NODE_DNS_STATS_V1_SIZE TR_STRUCT_END(tr_node_dns_stats, refused)

static inline void tr_node_dns_stats_init(tr_node_dns_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Fills the fields of `st` that fit in its struct_size. Thread-safe.
 * Errors: TR_EINVAL (NULL, st not initialised). */
TR_API int tr_node_dns_stats_get(tr_node_dns_stats *st, tr_node_dns *d);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_DNS_H */
