/*
 * Versioned structs at the library's edge: how the library reads a struct
 * that a caller compiled against another version of the headers filled
 * in, and how it fills one for such a caller (docs/abi.md, "Versioned
 * structs").
 *
 * Each versioned struct starts with `uint32_t struct_size`, which the
 * header's inline _init sets to the size the caller was compiled with.
 * The library never touches more than that many bytes of the caller's
 * struct and never reads a field past it:
 *
 *   in  (options): tr__struct_in copies the caller's bytes over a struct
 *       of the library's own size that holds the defaults, so a field the
 *       caller does not know keeps its default and the rest of the library
 *       reads its private copy as usual;
 *   out (statistics, results): the library fills a struct of its own size,
 *       then tr__struct_out copies as much as fits into the caller's.
 *
 * Header-only (static inline), so that the core, the supervisors and the
 * transport, which see different private headers and may end up in
 * different shared objects, share it without an exported symbol.
 */
#ifndef TR_ABI_H
#define TR_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "troupe/troupe.h"

/* The size of a versioned struct up to and including `field`: a struct of
 * the first version is TR__SIZE_TO(type, its last field of that version)
 * bytes at least, whatever padding the compiler added after it. */
#define TR__SIZE_TO(type, field) TR_STRUCT_END(type, field)

/* Reads the caller's versioned struct `src` (NULL: none given) into
 * `dst`, `dst_size` bytes that already hold the defaults (the library's
 * _init). `min_size` is the size of the struct's first version. Returns
 * TR_OK, TR_EINVAL (struct_size 0, below min_size: not initialised, or
 * not a struct of this kind), or TR_ENOTSUP (a caller built against a
 * newer troupe set a field this library does not know: its bytes past
 * dst_size are not all zero, and silently ignoring an option asked for
 * would be worse than refusing it; Linux's copy_struct_from_user has the
 * same rule). On success dst's struct_size is dst_size. */
static inline int tr__struct_in(
    void *dst, size_t dst_size, const void *src, size_t min_size)
{
	if (src == NULL)
		return TR_OK;
	uint32_t size;
	memcpy(&size, src, sizeof(size));
	if (size == 0 || size < min_size)
		return TR_EINVAL;
	if (size > dst_size) {
		const unsigned char *tail =
		    (const unsigned char *)src + dst_size;
		for (size_t i = 0; i < size - dst_size; i++)
			if (tail[i] != 0)
				return TR_ENOTSUP;
		size = (uint32_t)dst_size;
	}
	memcpy(dst, src, size);
	uint32_t full = (uint32_t)dst_size;
	memcpy(dst, &full, sizeof(full));
	return TR_OK;
}

/* Checks the struct_size of a caller's output struct before it is filled:
 * TR_EINVAL for NULL, 0 or below the first version's `min_size`. */
static inline int tr__struct_out_ok(const void *dst, size_t min_size)
{
	if (dst == NULL)
		return TR_EINVAL;
	uint32_t size;
	memcpy(&size, dst, sizeof(size));
	return size == 0 || size < min_size ? TR_EINVAL : TR_OK;
}

/* Copies the library's filled struct `src` (`src_size` bytes) into the
 * caller's `dst` (checked with tr__struct_out_ok): as many bytes as both
 * have, so that nothing past the caller's struct_size is written. dst's
 * struct_size is left as the caller set it; the fields a caller built
 * against a newer troupe has and this library does not are zeroed. */
static inline void tr__struct_out(void *dst, const void *src, size_t src_size)
{
	uint32_t size;
	memcpy(&size, dst, sizeof(size));
	size_t n = size < src_size ? size : src_size;
	memcpy((unsigned char *)dst + sizeof(size),
	    (const unsigned char *)src + sizeof(size), n - sizeof(size));
	if (size > src_size)
		memset((unsigned char *)dst + src_size, 0, size - src_size);
}

#endif /* TR_ABI_H */
