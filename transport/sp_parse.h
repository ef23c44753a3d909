/*
 * The SP stream parser: the bytes a push0 peer sends to a pull0 listener,
 * split into frames. Pure: no sockets, no threads, no locks; sp_in.c drives
 * one per inbound connection, and a test or a fuzzer can drive one alone.
 *
 * The stream is nng's pipeline protocol: the peer's 8-byte SP header {0,
 * 'S', 'P', 0, proto >> 8, proto & 0xff, 0, 0}, then every message as its
 * length in 8 bytes, big-endian, and its bytes; on ipc:// a message-type
 * byte of 1 comes before each length. The parser refuses, for good, a
 * header that is not the expected one, an ipc message type other than 1
 * and a length over the limit, each as soon as the offending bytes are
 * in, before any of the frame is buffered.
 *
 * Limits: a frame may be up to max_untrusted bytes until
 * tr__sp_parse_trust, then up to max_frame. The buffer holds the bytes not
 * yet taken: it starts at TR__SP_BUF_FIRST bytes (allocated at the first
 * tr__sp_parse_room), grows to TR__SP_BUF_TRUSTED once trusted, and beyond
 * those only to the size of the frame being read (with its prefix, and
 * the SP header while it is not taken). So a parser never holds more than
 * max(TR__SP_BUF_FIRST, TR__SP_ROOM_MAX + max_untrusted) bytes before it
 * is trusted, nor more than max(TR__SP_BUF_TRUSTED, TR__SP_ROOM_MAX +
 * max_frame) after.
 *
 * Use: tr__sp_parse_room gives where to put the next bytes (read from the
 * socket straight into it, or copy them), tr__sp_parse_commit says how
 * many were put there, and tr__sp_parse_next hands over whole frames one
 * at a time until it needs more bytes. tr__sp_parse_feed does room, copy
 * and commit in one call.
 */
#ifndef TR_SP_PARSE_H
#define TR_SP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR__SP_HDR 8u       /* the SP header */
#define TR__SP_HEAD_MAX 9u  /* a message's prefix: [1 on ipc] + length */
#define TR__SP_ROOM_MAX 17u /* both: what a buffer holds beyond a frame */
#define TR__SP_PUSH0 0x50u  /* SP protocol numbers */
#define TR__SP_PULL0 0x51u
#define TR__SP_BUF_FIRST 4096u            /* a new connection's buffer */
#define TR__SP_BUF_TRUSTED (256u * 1024u) /* once trusted: frames a read */

/* The SP header of protocol `proto`, and whether `h` is that header. */
void tr__sp_header(uint8_t h[TR__SP_HDR], unsigned proto);
bool tr__sp_header_ok(const uint8_t h[TR__SP_HDR], unsigned proto);

/* Writes the prefix of a message of `len` bytes at `h` (room for
 * TR__SP_HEAD_MAX) and returns its size: 8, or 9 on ipc. */
size_t tr__sp_frame_head(uint8_t *h, bool ipc, uint64_t len);

/* What tr__sp_parse_next found. */
enum {
	TR__SP_NEED,   /* no whole frame yet: feed more bytes */
	TR__SP_FRAME,  /* a frame */
	TR__SP_REFUSE, /* the stream broke the protocol; see tr__sp_parse_why */
};

/* One stream's state. The fields are private to sp_parse.c; embed it. */
typedef struct tr__sp_parse {
	uint8_t *buf;
	size_t cap;  /* bytes at buf */
	size_t fill; /* bytes put there */
	size_t pos;  /* bytes of it taken (header and frames) */
	size_t max_untrusted, max_frame;
	unsigned peer; /* the SP protocol the peer must speak */
	bool ipc;
	bool nego; /* the header has been checked */
	bool trusted;
	const char *why; /* the refusal, once refused */
} tr__sp_parse;

/* Starts a parser for a stream from a peer speaking SP protocol `peer`
 * (TR__SP_PUSH0 for a pull0 listener), with ipc's message-type byte if
 * `ipc`. max_untrusted is cut to max_frame if larger. Allocates nothing;
 * pair it with tr__sp_parse_fini. */
void tr__sp_parse_init(tr__sp_parse *p, unsigned peer, bool ipc,
    size_t max_untrusted, size_t max_frame);

/* Frees the buffer. Accepts a parser that never allocated. */
void tr__sp_parse_fini(tr__sp_parse *p);

/* From now on frames may be up to max_frame bytes. */
void tr__sp_parse_trust(tr__sp_parse *p);

/* Points *at at room for more bytes and stores how many in *len: at
 * least one, unless the buffer is full and its first frame is whole
 * (after tr__sp_parse_next returned TR__SP_NEED, never). Moves the
 * bytes not yet taken to the front of the buffer, so a frame from
 * tr__sp_parse_next is invalid once this is called. Returns false when
 * the parser has refused the stream, or cannot grow the buffer for the
 * frame being read (then it refuses it: "out of memory"). */
bool tr__sp_parse_room(tr__sp_parse *p, uint8_t **at, size_t *len);

/* Records that `n` bytes (at most the room given) were put at *at. */
void tr__sp_parse_commit(tr__sp_parse *p, size_t n);

/* Copies up to `n` bytes of `data` in (room, copy, commit) and returns
 * how many: fewer than `n` when the buffer is full and its first frame is
 * whole (take the frames, then feed the rest), or when refused. */
size_t tr__sp_parse_feed(tr__sp_parse *p, const uint8_t *data, size_t n);

/* The next whole frame: on TR__SP_FRAME *frame and *len are its bytes,
 * valid until the next tr__sp_parse_room, feed or fini. TR__SP_NEED: feed
 * more. TR__SP_REFUSE: refused, for good. */
int tr__sp_parse_next(tr__sp_parse *p, const uint8_t **frame, size_t *len);

/* Why the stream was refused ("not an SP push0 peer", "bad ipc message
 * type", "frame larger than the maximum", "out of memory"), or NULL. */
const char *tr__sp_parse_why(const tr__sp_parse *p);

/* Bytes of memory the parser holds (its buffer). */
size_t tr__sp_parse_held(const tr__sp_parse *p);

#endif
