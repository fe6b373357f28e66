/*
 * bench/layout: where the benchmarks put the nodes that fill the store.
 *
 * Node i of a store of N nodes is /bench/data/d<i/1000>/n<i%1000>: at most
 * a thousand children per directory, so no single listing or parent record
 * grows with N, only the number of nodes does.
 */
#ifndef XS_BENCH_LAYOUT_H
#define XS_BENCH_LAYOUT_H

#include <stdio.h>

#define BENCH_DATA_ROOT "/bench/data"

static inline int bench_node_path(char *buf, size_t size, unsigned long i)
{
	return snprintf(buf, size, BENCH_DATA_ROOT "/d%lu/n%lu", i / 1000,
			i % 1000);
}

#endif
