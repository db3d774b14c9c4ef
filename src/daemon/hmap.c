/* SPDX-License-Identifier: BSD-2-Clause */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>

static size_t hmap_slot(uint64_t key, size_t nbuckets)
{
	/* Fibonacci hashing: spreads sequential uids and ids across buckets. */
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (nbuckets - 1);
}

static int hmap_grow(struct hmap *map)
{
	size_t n = map->nbuckets ? map->nbuckets * 2 : 16;
	struct hmap_node **b = calloc(n, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < map->nbuckets; i++) {
		struct hmap_node *node = map->buckets[i];
		while (node) {
			struct hmap_node *next = node->next;
			size_t s = hmap_slot(node->key, n);
			node->next = b[s];
			b[s] = node;
			node = next;
		}
	}
	free(map->buckets);
	map->buckets = b;
	map->nbuckets = n;
	return 0;
}

int hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t key)
{
	if (map->count >= map->nbuckets && hmap_grow(map) < 0) {
		errno = ENOMEM;
		return -1;
	}
	size_t s = hmap_slot(key, map->nbuckets);
	node->key = key;
	node->next = map->buckets[s];
	map->buckets[s] = node;
	map->count++;
	return 0;
}

struct hmap_node *hmap_find(const struct hmap *map, uint64_t key)
{
	if (!map->nbuckets)
		return NULL;
	for (struct hmap_node *n = map->buckets[hmap_slot(key, map->nbuckets)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

void hmap_remove(struct hmap *map, struct hmap_node *node)
{
	struct hmap_node **p = &map->buckets[hmap_slot(node->key, map->nbuckets)];
	while (*p && *p != node)
		p = &(*p)->next;
	if (*p) {
		*p = node->next;
		map->count--;
	}
}

void hmap_free(struct hmap *map)
{
	free(map->buckets);
	map->buckets = NULL;
	map->nbuckets = map->count = 0;
}

struct hmap_node *hmap_first(const struct hmap *map, size_t *bucket)
{
	for (*bucket = 0; *bucket < map->nbuckets; (*bucket)++)
		if (map->buckets[*bucket])
			return map->buckets[*bucket];
	return NULL;
}

struct hmap_node *hmap_next(const struct hmap *map, struct hmap_node *node, size_t *bucket)
{
	if (node->next)
		return node->next;
	for ((*bucket)++; *bucket < map->nbuckets; (*bucket)++)
		if (map->buckets[*bucket])
			return map->buckets[*bucket];
	return NULL;
}
