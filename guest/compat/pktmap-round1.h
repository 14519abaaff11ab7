/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * pktmap.h - map kernel-bypass resources of /dev/pktmap by encoding what to map in the mmap
 * offset. The C face of the Rust library `pktmap` (link libpktmap.a or libpktmap.so) and the
 * ioctl ABI of the pktmap.ko driver. Every value here mirrors driver/abi (crate pktmap-abi); a
 * host test compiles this header and compares each one.
 */
#ifndef PKTMAP_H
#define PKTMAP_H

#include <stdint.h>
#include <linux/ioctl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The offset: type in bits 12..15, id in bits 15..47, all else zero. ---- */
#define PKTMAP_PAGE_SHIFT 12
#define PKTMAP_TYPE_SHIFT 12
#define PKTMAP_TYPE_WIDTH 3
#define PKTMAP_ID_SHIFT 15
#define PKTMAP_ID_WIDTH 32
#define PKTMAP_MMAP_OFFSET(type, id) \
	(((uint64_t)(id) << PKTMAP_ID_SHIFT) | ((uint64_t)(type) << PKTMAP_TYPE_SHIFT))

/* Map types. */
#define PKTMAP_TYPE_STATE 0 /* the read-only counters page, id 0 */
#define PKTMAP_TYPE_POOL 1  /* a packet-buffer pool, id from PKTMAP_IOC_POOL_CREATE */
#define PKTMAP_TYPE_RING 2  /* a descriptor ring, id from PKTMAP_IOC_RING_CREATE */

/* Flags: Onload's OO_MMAP_FLAG_* bit values. Any other bit is -EINVAL. */
#define PKTMAP_MMAP_FLAG_READONLY 1 /* PROT_READ only (else PROT_READ|PROT_WRITE) */
#define PKTMAP_MMAP_FLAG_FIXED 2    /* map at *p_out, replacing what is there (MAP_FIXED) */
#define PKTMAP_MMAP_FLAG_POPULATE 4 /* prefault every page, or fail with the errno that stopped it */

/*
 * Map `bytes` bytes of resource (map_type, map_id) of the /dev/pktmap file `fd`, MAP_SHARED.
 * Returns 0 and stores the address in *p_out, or returns -errno and leaves *p_out alone.
 * errno is never changed. With PKTMAP_MMAP_FLAG_FIXED the address is read from *p_out.
 */
int pktmap_resource_mmap(int fd, uint8_t map_type, unsigned long map_id, unsigned bytes,
			 int flags, void **p_out);

/* Unmap what pktmap_resource_mmap mapped. Returns 0 or -errno; errno is never changed. */
int pktmap_resource_munmap(void *p, int bytes);

/* ---- The /dev/pktmap ioctls. ---- */
#define PKTMAP_IOC_MAGIC 'P'

#define PKTMAP_POOL_LAZY 1 /* pages served by the fault handler, not at mmap time */
#define PKTMAP_MIN_BUF_SIZE 256
#define PKTMAP_MAX_BUF_SIZE 65536
#define PKTMAP_MAX_POOL_BYTES (256ull << 20)
#define PKTMAP_MAX_RING_ENTRIES 32768
#define PKTMAP_MAX_RESOURCES 1024

struct pktmap_pool_create {
	uint32_t buf_size;  /* power of two, 256..65536 */
	uint32_t buf_count; /* >= 1; buf_size * buf_count <= PKTMAP_MAX_POOL_BYTES */
	uint32_t flags;     /* PKTMAP_POOL_LAZY or 0 */
	uint32_t id;        /* out: the pool id, never 0 */
};

struct pktmap_pool_info {
	uint32_t id; /* in */
	uint32_t buf_size;
	uint32_t buf_count;
	uint32_t flags;
	uint64_t bytes;       /* size, a whole number of pages */
	uint64_t mmap_offset; /* PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, id) */
};

struct pktmap_ring_create {
	uint32_t entries; /* power of two, 1..PKTMAP_MAX_RING_ENTRIES */
	uint32_t pool_id; /* the pool whose buffers descriptors name */
	uint32_t flags;   /* 0 */
	uint32_t id;      /* out: the ring id, never 0 */
};

struct pktmap_ring_info {
	uint32_t id; /* in */
	uint32_t entries;
	uint32_t pool_id;
	uint32_t flags;
	uint64_t bytes;
	uint64_t mmap_offset;
};

struct pktmap_id {
	uint32_t id;
};

#define PKTMAP_IOC_POOL_CREATE _IOWR(PKTMAP_IOC_MAGIC, 1, struct pktmap_pool_create)
#define PKTMAP_IOC_POOL_INFO _IOWR(PKTMAP_IOC_MAGIC, 2, struct pktmap_pool_info)
#define PKTMAP_IOC_POOL_DESTROY _IOW(PKTMAP_IOC_MAGIC, 3, struct pktmap_id)
#define PKTMAP_IOC_RING_CREATE _IOWR(PKTMAP_IOC_MAGIC, 4, struct pktmap_ring_create)
#define PKTMAP_IOC_RING_INFO _IOWR(PKTMAP_IOC_MAGIC, 5, struct pktmap_ring_info)
#define PKTMAP_IOC_RING_DESTROY _IOW(PKTMAP_IOC_MAGIC, 6, struct pktmap_id)

/* The STATE page (type STATE, id 0): device-wide counters written by the driver. */
#define PKTMAP_STATE_MAGIC 0x010070616d746b70ull /* "pktmap\0\x01" little-endian */
struct pktmap_state {
	uint64_t magic;
	uint64_t pools;           /* gauge */
	uint64_t rings;           /* gauge */
	uint64_t pages_allocated; /* gauge */
	uint64_t pages_mapped;    /* event counter */
	uint64_t faults_served;   /* event counter */
	uint64_t live_mappings;   /* gauge */
};

/* A ring mapping: this header, then at PKTMAP_RING_DESC_OFFSET `entries` descriptors. */
#define PKTMAP_RING_DESC_OFFSET 64
struct pktmap_ring_header {
	uint32_t producer;
	uint32_t consumer;
	uint32_t entries;
	uint32_t pool_id;
};

struct pktmap_desc {
	uint32_t buf; /* buffer index in the ring's pool */
	uint32_t len;
};

#ifdef __cplusplus
}
#endif

#endif /* PKTMAP_H */
