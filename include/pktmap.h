/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * pktmap.h - map kernel-bypass resources by encoding what to map in the mmap offset. The C
 * face of the Rust library `pktmap` (link libpktmap.a or libpktmap.so, found with
 * `pkg-config pktmap`) and the ioctl ABI of the pktmap.ko driver (/dev/pktmap). Every value
 * here mirrors driver/abi (crate pktmap-abi); a host test compiles this header and compares
 * each one.
 *
 * Errors: every function returns 0 (or a descriptor) or a negative errno, and leaves the
 * caller's errno unchanged. Each lists its errnos below; an errno of the kernel's mmap(2),
 * munmap(2), madvise(2), sendmsg(2) or recvmsg(2) passes through as that call documents it.
 */
#ifndef PKTMAP_H
#define PKTMAP_H

#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version: the version of the pktmap crate this header and library come from. ---- */
#define PKTMAP_VERSION_MAJOR 0
#define PKTMAP_VERSION_MINOR 2
#define PKTMAP_VERSION_PATCH 0
#define PKTMAP_VERSION_STRING "0.2.0"
/* One number that orders versions: PKTMAP_VERSION_ENCODE(0, 1, 0) is 0x000100. */
#define PKTMAP_VERSION_ENCODE(major, minor, patch) \
	(((unsigned)(major) << 16) | ((unsigned)(minor) << 8) | (unsigned)(patch))
#define PKTMAP_VERSION \
	PKTMAP_VERSION_ENCODE(PKTMAP_VERSION_MAJOR, PKTMAP_VERSION_MINOR, PKTMAP_VERSION_PATCH)

/*
 * The version of the library linked at run time, PKTMAP_VERSION_ENCODE'd, to compare with the
 * header's PKTMAP_VERSION (a program built against one shared library may run with a newer
 * one of the same SONAME: pktmap_version() >= PKTMAP_VERSION holds then). Never fails.
 */
unsigned pktmap_version(void);

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
/* OR'd into an mmap offset: the driver inserts every page at mmap (a lazy pool as an eager one;
 * the others are whole already). A request, not part of the name: the mapping's offset is the
 * plain one. pktmap_resource_map with PKTMAP_MMAP_FLAG_POPULATE sets it for lazy pools. */
#define PKTMAP_MMAP_OFFSET_POPULATE (1ull << 62)

/* Flags: Onload's OO_MMAP_FLAG_* bit values. Any other bit is -EINVAL. */
#define PKTMAP_MMAP_FLAG_READONLY 1 /* PROT_READ only (else PROT_READ|PROT_WRITE) */
#define PKTMAP_MMAP_FLAG_FIXED 2    /* map at *p_out, replacing what is there (MAP_FIXED) */
#define PKTMAP_MMAP_FLAG_POPULATE 4 /* prefault every page, or fail with the errno that stopped it */

/*
 * Map `bytes` bytes of resource (map_type, map_id) of the file `fd`, MAP_SHARED, at the offset
 * PKTMAP_MMAP_OFFSET(map_type, map_id). Any file mmap(2) accepts works: /dev/pktmap, a pool
 * file from PKTMAP_IOC_POOL_EXPORT, a memfd or a regular file laid out by that offset.
 * Returns 0 and stores the address in *p_out, or returns -errno and leaves *p_out alone.
 * errno is never changed. With PKTMAP_MMAP_FLAG_FIXED the address is read from *p_out.
 *
 * Errors (both map calls):
 *   -EINVAL   a flag bit other than PKTMAP_MMAP_FLAG_*, a type or id the offset cannot hold
 *             (type > 7, id >= 2^32), bytes == 0, FIXED with *p_out NULL or not page-aligned,
 *             bytes past the end of a regular file or memfd (refused before the mmap: a
 *             touch there would be SIGBUS); from /dev/pktmap: no resource (map_type, map_id),
 *             or bytes past its end
 *   -EFAULT   p_out is NULL; with POPULATE: a page the file cannot back
 *   -EBADF    fd is negative or not an open file
 *   -EACCES   fd is not open for reading, or (without READONLY) not for writing
 *   -EPERM    a write mapping of a read-only resource (/dev/pktmap, a read-only pool file) or of
 *             a memfd sealed against writing
 *   -ENODEV   the file cannot be mapped
 *   -ENOMEM   no address space for `bytes`, too many mappings, or with POPULATE no memory
 *   -ENOSPC   /dev/pktmap's page budget is spent
 *
 * Two pairs do this. pktmap_resource_map/pktmap_resource_unmap take size_t lengths and can
 * map and unmap anything. pktmap_resource_mmap/pktmap_resource_munmap are Onload's
 * oo_resource_mmap signatures, kept for source compatibility: their lengths are `unsigned`
 * and `int`, so pktmap_resource_munmap cannot unmap 2 GiB or more: unmap such a mapping with
 * pktmap_resource_unmap (any mapping of either pair may be unmapped by either pair).
 */
int pktmap_resource_map(int fd, uint8_t map_type, uint64_t map_id, size_t bytes, int flags,
			void **p_out);

/* Unmap `bytes` bytes at `p` that a map call returned. Returns 0 or -errno; errno is never
 * changed.
 * Errors: -EINVAL for p NULL or not page-aligned, or bytes == 0. */
int pktmap_resource_unmap(void *p, size_t bytes);

/* Onload's pair: as above, with an `unsigned` length to map and an `int` one to unmap.
 * Errors: as pktmap_resource_map and pktmap_resource_unmap; pktmap_resource_munmap is also
 * -EINVAL for a negative `bytes`. */
int pktmap_resource_mmap(int fd, uint8_t map_type, unsigned long map_id, unsigned bytes,
			 int flags, void **p_out);
int pktmap_resource_munmap(void *p, int bytes);

/* Pass a pool file descriptor (from PKTMAP_IOC_POOL_EXPORT) to another process over a connected
 * UNIX socket (SCM_RIGHTS), with `read_only` as a one-byte message; the receiver gets its own
 * descriptor (O_CLOEXEC) and maps it at PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 0). Both return
 * -errno on failure (pktmap_pool_send 0 on success, pktmap_pool_recv the new descriptor) and
 * leave errno unchanged.
 * Errors of pktmap_pool_send: -EBADF (a negative or closed descriptor), -ENOTSOCK (sock is not a
 *   socket), -ENOTCONN, -EPIPE (the peer is gone), -EAGAIN (a full non-blocking socket).
 * Errors of pktmap_pool_recv: -EBADF, -ENOTSOCK, -EINVAL (a message without a descriptor, or
 *   the peer closed the socket), -EAGAIN (a non-blocking socket with nothing to read),
 *   -EMFILE (the process's descriptor table is full). */
int pktmap_pool_send(int sock, int pool_fd, int read_only);
int pktmap_pool_recv(int sock, int *read_only);

/* ---- The /dev/pktmap ioctls. ---- */
#define PKTMAP_IOC_MAGIC 'P'

/* Pool kinds (struct pktmap_pool_create.flags): at most one; none is an eager pool. */
#define PKTMAP_POOL_LAZY 1   /* pages served by the fault handler, fault_around per fault */
#define PKTMAP_POOL_CONTIG 2 /* physically contiguous chunks, remap_pfn_range at mmap */
#define PKTMAP_POOL_HUGE 4   /* 2 MiB chunks, one PMD entry per fault */
/* Cache attributes (struct pktmap_pool_create.cache). */
#define PKTMAP_CACHE_WB 0 /* cached, the default */
#define PKTMAP_CACHE_WC 1 /* write-combined: PKTMAP_POOL_CONTIG and PKTMAP_POOL_HUGE only */
#define PKTMAP_DEFAULT_FAULT_AROUND 16
#define PKTMAP_MAX_FAULT_AROUND 512
#define PKTMAP_HUGE_CHUNK_PAGES 512
#define PKTMAP_MAX_CONTIG_CHUNK_PAGES 512
#define PKTMAP_EXPORT_READONLY 1 /* struct pktmap_pool_export.flags */
#define PKTMAP_MIN_BUF_SIZE 256
#define PKTMAP_MAX_BUF_SIZE 65536
#define PKTMAP_MAX_POOL_BYTES (256ull << 20)
#define PKTMAP_MAX_RING_ENTRIES 32768
#define PKTMAP_MAX_RESOURCES 1024

/*
 * Growing these structs (driver/abi/src/ioctl.rs, "Growing an argument struct"): a struct only
 * grows at its end, and a new field's zero means what the struct meant before it. The driver
 * serves every size a struct had (a program built against an older pktmap.h runs unchanged)
 * and a longer struct only if its bytes past the driver's are zero, else E2BIG: zero the whole
 * struct before setting fields.
 */
struct pktmap_pool_create {
	uint32_t buf_size;  /* power of two, 256..65536 */
	uint32_t buf_count; /* >= 1; buf_size * buf_count <= PKTMAP_MAX_POOL_BYTES */
	uint32_t flags;     /* 0 (eager) or one PKTMAP_POOL_* kind */
	uint32_t id;        /* out: the pool id, never 0 */
	uint32_t fault_around; /* lazy: pages per fault, power of two <= 512, 0 = 16; else 0 */
	uint32_t cache;        /* PKTMAP_CACHE_WB or PKTMAP_CACHE_WC */
	uint64_t reserved;     /* 0 */
};

struct pktmap_pool_info {
	uint32_t id; /* in */
	uint32_t buf_size;
	uint32_t buf_count;
	uint32_t flags;
	uint64_t bytes;       /* size, a whole number of pages */
	uint64_t mmap_offset; /* PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, id) */
	uint32_t fault_around; /* lazy pools: pages per fault; else 0 */
	uint32_t cache;        /* PKTMAP_CACHE_* */
	uint64_t chunk_bytes;  /* bytes per physically contiguous chunk (4096: single pages) */
};

/* PKTMAP_IOC_POOL_CHUNK (root only): the physical address of chunk `index` of pool `id`. */
struct pktmap_pool_chunk {
	uint32_t id;    /* in */
	uint32_t index; /* in: below bytes / chunk_bytes */
	uint64_t phys;  /* out */
	uint64_t bytes; /* out: chunk_bytes */
};

/* PKTMAP_IOC_POOL_EXPORT: a file descriptor of the pool's own (O_CLOEXEC), mapped at
 * PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 0); PKTMAP_IOC_POOL_INFO with id 0 describes it. */
struct pktmap_pool_export {
	uint32_t id;       /* in */
	uint32_t flags;    /* in: PKTMAP_EXPORT_READONLY or 0 */
	int32_t fd;        /* out */
	uint32_t reserved; /* 0 */
};

struct pktmap_ring_create {
	uint32_t entries; /* power of two, 1..PKTMAP_MAX_RING_ENTRIES */
	uint32_t pool_id; /* the pool whose buffers descriptors name */
	uint32_t flags;   /* 0, or PKTMAP_RING_PACKET (below) */
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
#define PKTMAP_IOC_POOL_CHUNK _IOWR(PKTMAP_IOC_MAGIC, 7, struct pktmap_pool_chunk)
#define PKTMAP_IOC_POOL_EXPORT _IOWR(PKTMAP_IOC_MAGIC, 8, struct pktmap_pool_export)

/* The STATE page (type STATE, id 0): device-wide counters written by the driver under a
 * seqcount: read `sequence` (retry while odd), the words, then `sequence` again (retry if it
 * changed). pread(2) of STATE returns one consistent snapshot. */
#define PKTMAP_STATE_MAGIC 0x010070616d746b70ull /* "pktmap\0\x01" little-endian */
struct pktmap_state {
	uint64_t magic;
	uint64_t pools;           /* gauge */
	uint64_t rings;           /* gauge */
	uint64_t pages_allocated; /* gauge */
	uint64_t pages_mapped;    /* event counter */
	uint64_t faults_served;   /* event counter */
	uint64_t live_mappings;   /* gauge */
	uint64_t pages_budget;    /* setting: the page_budget module parameter */
	uint64_t sequence;        /* seqcount: odd while the driver updates the page */
	uint64_t pmd_faults;      /* event counter: faults served by one 2 MiB entry */
	uint64_t pool_files;      /* gauge: live pool file descriptors */
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

/*
 * ---- Packets (pktmap 0.2): rings attached to a network device. ----
 *
 * A pool and one or two rings made with PKTMAP_RING_PACKET, mapped, then bound to a device with
 * PKTMAP_IOC_ATTACH (or pktmap_packet_attach): frames the device receives land in pool buffers
 * behind the RX ring with no system call per frame; frames behind the TX ring leave on
 * PKTMAP_IOC_KICK. The ring (layout version 1, driver/abi/src/packet.rs):
 *
 *   0     struct pktmap_packet_ring  written once by the driver
 *   64    producer (uint32_t)        RX: the driver's; TX: the program's
 *   128   consumer (uint32_t)        RX: the program's; TX: the driver's
 *   192   need-wakeup (uint32_t)     RX: 1 from the program before it sleeps; the driver clears it
 *   256   counters (uint64_t[32])    PKTMAP_PKT_*, monotonic, never cleared
 *   4096  entries x struct pktmap_packet_desc
 *
 * Indices run free; slot i is descriptor i & (entries - 1). Load the other side's index with
 * acquire ordering, store your own with release ordering after the descriptors it covers.
 * RX: every slot owns a buffer (slot i starts with buffer i); frames are consumer..producer; a
 * slot may be given another free buffer before it is released (a swap). TX: fill descriptors
 * from producer (flags 0), store producer, kick; the buffer is yours again once consumer passes.
 */
#define PKTMAP_RING_PACKET 1   /* struct pktmap_ring_create.flags: a packet ring */
#define PKTMAP_ATTACH_MIRROR 1 /* struct pktmap_attach.flags; 0: steal (the stack sees nothing) */
#define PKTMAP_MAX_ATTACHMENTS 64

struct pktmap_attach {
	uint32_t ifindex;  /* in: in the opener's network namespace */
	uint32_t pool_id;  /* in: the rings' pool: buf_count >= rx + tx entries */
	uint32_t rx_ring;  /* in: a packet ring's id, or 0 */
	uint32_t tx_ring;  /* in: a packet ring's id, or 0 */
	uint32_t flags;    /* in: 0 or PKTMAP_ATTACH_MIRROR */
	uint32_t id;       /* out: the attachment's id, never 0 */
	uint64_t reserved; /* 0 */
};

#define PKTMAP_IOC_ATTACH _IOWR(PKTMAP_IOC_MAGIC, 9, struct pktmap_attach)
#define PKTMAP_IOC_DETACH _IOW(PKTMAP_IOC_MAGIC, 10, struct pktmap_id)
#define PKTMAP_IOC_KICK _IOW(PKTMAP_IOC_MAGIC, 11, struct pktmap_id)

#define PKTMAP_PACKET_RING_MAGIC 0x67526b70u /* "pkRg" little-endian */
#define PKTMAP_PACKET_RING_VERSION 1
#define PKTMAP_PACKET_PRODUCER_OFFSET 64
#define PKTMAP_PACKET_CONSUMER_OFFSET 128
#define PKTMAP_PACKET_WAKEUP_OFFSET 192
#define PKTMAP_PACKET_COUNTERS_OFFSET 256
#define PKTMAP_PACKET_COUNTER_WORDS 32
#define PKTMAP_PACKET_DESC_OFFSET 4096

struct pktmap_packet_ring {
	uint32_t magic;   /* PKTMAP_PACKET_RING_MAGIC */
	uint32_t version; /* PKTMAP_PACKET_RING_VERSION */
	uint32_t entries; /* a power of two */
	uint32_t pool_id;
	uint32_t producer_offset;
	uint32_t consumer_offset;
	uint32_t wakeup_offset;
	uint32_t counters_offset;
	uint32_t counter_words;
	uint32_t desc_offset;
	uint32_t desc_size; /* sizeof(struct pktmap_packet_desc) */
	uint32_t reserved;
};

struct pktmap_packet_desc {
	uint32_t buf;      /* buffer index in the pool */
	uint32_t len;      /* bytes in the buffer, from the Ethernet header */
	uint32_t wire_len; /* RX: the frame's length on the wire (> len when truncated) */
	uint16_t flags;    /* RX: PKTMAP_DESC_*; TX: 0 */
	uint16_t vlan_tci; /* RX: with PKTMAP_DESC_VLAN */
};

#define PKTMAP_DESC_TRUNCATED 1
#define PKTMAP_DESC_VLAN 2
#define PKTMAP_DESC_CSUM_PARTIAL 4
#define PKTMAP_DESC_CSUM_VALID 8
#define PKTMAP_DESC_GSO 16

/* Counter words (uint64_t at PKTMAP_PACKET_COUNTERS_OFFSET + 8 * index). */
#define PKTMAP_PKT_RX_PACKETS 0
#define PKTMAP_PKT_RX_BYTES 1
#define PKTMAP_PKT_RX_RING_FULL 2
#define PKTMAP_PKT_RX_OVERSIZE 3
#define PKTMAP_PKT_RX_INVALID_DESC 4
#define PKTMAP_PKT_RX_GSO 5
#define PKTMAP_PKT_RX_COPY_ERRORS 6
#define PKTMAP_PKT_WAKEUPS 7
#define PKTMAP_PKT_TX_PACKETS 8
#define PKTMAP_PKT_TX_BYTES 9
#define PKTMAP_PKT_TX_INVALID_DESC 10
#define PKTMAP_PKT_TX_ERRORS 11
#define PKTMAP_PKT_KICKS 12
#define PKTMAP_PKT_COUNTERS 13

/*
 * PKTMAP_IOC_ATTACH on `fd` (an open /dev/pktmap, read-write): 0 and req->id set, or -errno
 * (-EINVAL a request the driver's checks refuse, -EBUSY a ring already attached or a device
 * with another receive handler, -ENODEV no such ifindex, -ENOSPC too many attachments,
 * -EFAULT a null req). errno is left as it was.
 */
int pktmap_packet_attach(int fd, struct pktmap_attach *req);
/* PKTMAP_IOC_DETACH: 0, or -errno (-EINVAL an unknown id). */
int pktmap_packet_detach(int fd, uint32_t id);
/* PKTMAP_IOC_KICK: the number of TX slots the driver released (>= 0), or -errno (-EINVAL an
 * unknown id or an attachment without a TX ring, -ENODEV once the device is gone). */
int pktmap_packet_kick(int fd, uint32_t id);

#ifdef __cplusplus
}
#endif

#endif /* PKTMAP_H */
