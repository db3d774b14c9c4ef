/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Intrusive hash map keyed by a 64-bit integer (uid, session id, pid).
 * Chained buckets, power-of-two table that doubles when the load passes 1;
 * lookups are O(1) on average. Embed a struct hmap_node in the object and
 * recover the object with container_of.
 */
#ifndef DUS_HMAP_H
#define DUS_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct hmap_node {
	struct hmap_node *next;
	uint64_t key;
};

struct hmap {
	struct hmap_node **buckets;
	size_t nbuckets; /* 0 or a power of two */
	size_t count;
};

/* Insert node under key (keys are unique: the caller checks first). -1 on ENOMEM. */
int hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t key);
struct hmap_node *hmap_find(const struct hmap *map, uint64_t key);
void hmap_remove(struct hmap *map, struct hmap_node *node);
void hmap_free(struct hmap *map);

/* Iterate: for (node = hmap_first(m, &i); node; node = hmap_next(m, node, &i)).
 * The current node may be removed only if the next one was fetched first. */
struct hmap_node *hmap_first(const struct hmap *map, size_t *bucket);
struct hmap_node *hmap_next(const struct hmap *map, struct hmap_node *node, size_t *bucket);

#endif
