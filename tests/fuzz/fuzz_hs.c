/*
 * Fuzz target: the whole handshake state machine (transport/hs.c), driven
 * without sockets through the simulated network of tests/dist/hs_sim.h.
 * The input is a program: each byte picks an operation (deliver a frame
 * on a connection the next byte picks, start a connect, inject a frame
 * made of the following bytes on a pipe, replay a frame seen on the wire
 * with a byte changed, let time pass, restart a node). Three nodes share
 * the key; whatever the input, nothing crashes or leaks (ASan), and once
 * the network has settled, two nodes that both hold a pair with each other
 * hold the same pair.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../dist/hs_sim.h"

static const char *const names[] = {"alpha", "beta", "gamma"};

#define SEEN 16

struct cursor {
	const uint8_t *p;
	size_t n;
};

static int next(struct cursor *c)
{
	if (c->n == 0)
		return -1;
	c->n--;
	return *c->p++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim s;
	sim_init(&s, 3, size, names);
	struct cursor c = {data, size};
	uint8_t seen[SEEN][256];
	size_t seen_len[SEEN];
	unsigned nseen = 0;
	int op;
	while ((op = next(&c)) >= 0) {
		int a = next(&c), b;
		if (a < 0)
			break;
		switch (op % 8) {
		case 0:
			b = (a / 3) % 3;
			if (a % 3 != b)
				(void)sim_connect(&s, a % 3, b);
			break;
		case 1:
		case 2:
		case 3: {
			/* Before delivering, keep a copy of the frame for
			 * replays. */
			for (int i = 0; i < SIM_CONNS && nseen < SEEN; i++) {
				struct sim_conn *k = &s.conns[i];
				if (k->used && k->n != 0 &&
				    k->q[k->head].len <= sizeof(seen[0])) {
					memcpy(seen[nseen], k->q[k->head].buf,
					    k->q[k->head].len);
					seen_len[nseen++] = k->q[k->head].len;
					break;
				}
			}
			(void)sim_step(&s, (uint32_t)a);
			break;
		}
		case 4: {
			/* A frame from the input, on a pipe the input names
			 * (an existing one or a new one). */
			size_t len = (size_t)a;
			if (len > c.n)
				len = c.n;
			int k = next(&c);
			if (k < 0)
				break;
			tr__hs_acts acts = {0};
			uint32_t pipe =
			    100000 +
			    (uint32_t)(k % 8); /* off-path: a pipe of its own */
			(void)tr__hs_frame(s.nodes[k % 3].hs, &acts, s.now,
			    pipe, 0, c.p, len > 0 ? len - 1 : 0);
			sim_run(&s, k % 3, &acts);
			c.p += len > 0 ? len - 1 : 0;
			c.n -= len > 0 ? len - 1 : 0;
			break;
		}
		case 5:
			if (nseen != 0) {
				unsigned i = (unsigned)a % nseen;
				int flip = next(&c);
				uint8_t f[256];
				memcpy(f, seen[i], seen_len[i]);
				if (flip >= 0 && seen_len[i] != 0)
					f[(size_t)flip % seen_len[i]] ^=
					    (uint8_t)(1u << (flip % 8));
				tr__hs_acts acts = {0};
				(void)tr__hs_frame(s.nodes[a % 3].hs, &acts,
				    s.now, 100000 + (uint32_t)(a % 8), 0, f,
				    seen_len[i]);
				sim_run(&s, a % 3, &acts);
			}
			break;
		case 6:
			sim_tick(&s, (int64_t)a * 40);
			break;
		case 7:
			if (a % 16 == 0)
				sim_restart(&s, a % 3, NULL);
			break;
		}
	}
	/* Settle: deliver everything, then let every deadline pass. */
	for (int i = 0; i < 100000 && sim_step(&s, (uint32_t)i * 7919u); i++)
		;
	sim_tick(&s, TR__HS_TIMEOUT_MS + 1);
	for (int i = 0; i < 100000 && sim_step(&s, (uint32_t)i * 7919u); i++)
		;
	for (int x = 0; x < 3; x++)
		for (int y = x + 1; y < 3; y++)
			if (s.nodes[x].pairs[y].up && s.nodes[y].pairs[x].up &&
			    !sim_paired(&s, x, y))
				__builtin_trap();
	sim_fini(&s);
	return 0;
}
