/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * round1.c - a program built against the first round's include/pktmap.h (kept beside it as
 * pktmap-round1.h, byte for byte as git history has it: 3852617^), run unchanged in the guest
 * against today's module. Its structs are the old ones: a 16-byte pktmap_pool_create, a 32-byte
 * pktmap_pool_info, a 56-byte pktmap_state; its request numbers carry those sizes. The module
 * must serve them by the contract's growth rule (driver/abi/src/ioctl.rs, "Growing an argument
 * struct"): every old request works, nothing is written past an old struct, and STATE's first
 * seven words are the old ones. It also plays a program built against a *newer* header: a
 * longer struct with a non-zero byte past today's is E2BIG, with zeros it is served.
 *
 * Built static by scripts/lib/guest-prog.sh (gcc -static, the guest has no libc) and run as
 * /compat-round1; prints `ok   name` or `FAIL name: detail` per check and closes with
 * `N passed, M failed`, like pktmap-guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pktmap-round1.h"

static int passed, failed;

static void check(const char *name, int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		printf("ok   %s\n", name);
		return;
	}
	failed++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* An ioctl's result: 0, or -errno. */
static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) == 0 ? 0 : -errno;
}

/* Whether `len` bytes at `p` all equal `b`. */
static int all(const void *p, size_t len, unsigned char b)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i] != b)
			return 0;
	return 1;
}

/* An old struct followed by guard bytes the driver must never write. */
#define GUARD 64
struct create_guarded {
	struct pktmap_pool_create req;
	unsigned char guard[GUARD];
};
struct info_guarded {
	struct pktmap_pool_info info;
	unsigned char guard[GUARD];
};

static int state_gauges(int fd, struct pktmap_state *s)
{
	return pread(fd, s, sizeof(*s), 0) == (ssize_t)sizeof(*s) ? 0 : -errno;
}

int main(void)
{
	struct pktmap_state base, now;
	int fd = open("/dev/pktmap", O_RDWR | O_CLOEXEC);

	check("round 1: the sizes this program was built with (16, 32, 56 bytes)",
	      sizeof(struct pktmap_pool_create) == 16 && sizeof(struct pktmap_pool_info) == 32 &&
		      sizeof(struct pktmap_state) == 56,
	      "%zu %zu %zu", sizeof(struct pktmap_pool_create), sizeof(struct pktmap_pool_info),
	      sizeof(struct pktmap_state));
	if (fd < 0) {
		check("round 1: open /dev/pktmap", 0, "%s", strerror(errno));
		goto out;
	}

	/* STATE through pread, 56 bytes: the seven words of round 1, in their places. */
	int rc = state_gauges(fd, &base);
	check("round 1: pread of a 56-byte STATE gives the magic", rc == 0 && base.magic == PKTMAP_STATE_MAGIC,
	      "rc %d magic %#llx", rc, (unsigned long long)base.magic);

	/* STATE through mmap. */
	void *sp = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_STATE, 0));
	if (sp == MAP_FAILED) {
		check("round 1: mmap STATE", 0, "%s", strerror(errno));
	} else {
		const struct pktmap_state *ms = sp;
		check("round 1: mapped STATE has the magic and counts this mapping",
		      ms->magic == PKTMAP_STATE_MAGIC && ms->live_mappings == base.live_mappings + 1,
		      "magic %#llx live_mappings %llu (pread said %llu before)",
		      (unsigned long long)ms->magic, (unsigned long long)ms->live_mappings,
		      (unsigned long long)base.live_mappings);
		munmap(sp, 4096);
	}

	/* POOL_CREATE, 16 bytes: an eager pool and a lazy one. */
	struct create_guarded eager, lazy;
	memset(&eager, 0xaa, sizeof(eager));
	memset(&lazy, 0xaa, sizeof(lazy));
	eager.req = (struct pktmap_pool_create){ .buf_size = 2048, .buf_count = 8, .flags = 0 };
	lazy.req = (struct pktmap_pool_create){ .buf_size = 4096, .buf_count = 32, .flags = PKTMAP_POOL_LAZY };
	rc = xioctl(fd, PKTMAP_IOC_POOL_CREATE, &eager.req);
	check("round 1: POOL_CREATE (16 bytes) of an eager pool", rc == 0 && eager.req.id != 0,
	      "rc %d id %u", rc, eager.req.id);
	check("round 1: POOL_CREATE writes nothing past the 16-byte struct", all(eager.guard, GUARD, 0xaa),
	      "guard bytes changed");
	rc = xioctl(fd, PKTMAP_IOC_POOL_CREATE, &lazy.req);
	check("round 1: POOL_CREATE (16 bytes) of a lazy pool", rc == 0 && lazy.req.id != 0 &&
	      lazy.req.id != eager.req.id, "rc %d id %u", rc, lazy.req.id);

	/* POOL_INFO, 32 bytes. */
	struct info_guarded info;
	memset(&info, 0xaa, sizeof(info));
	info.info = (struct pktmap_pool_info){ .id = lazy.req.id };
	rc = xioctl(fd, PKTMAP_IOC_POOL_INFO, &info.info);
	check("round 1: POOL_INFO (32 bytes) describes the lazy pool",
	      rc == 0 && info.info.buf_size == 4096 && info.info.buf_count == 32 &&
		      info.info.flags == PKTMAP_POOL_LAZY && info.info.bytes == 32 * 4096 &&
		      info.info.mmap_offset == PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, lazy.req.id),
	      "rc %d buf_size %u buf_count %u flags %u bytes %llu offset %#llx", rc,
	      info.info.buf_size, info.info.buf_count, info.info.flags,
	      (unsigned long long)info.info.bytes, (unsigned long long)info.info.mmap_offset);
	check("round 1: POOL_INFO writes nothing past the 32-byte struct", all(info.guard, GUARD, 0xaa),
	      "guard bytes changed");

	rc = state_gauges(fd, &now);
	check("round 1: STATE counts both pools and their pages (4 + 32)",
	      rc == 0 && now.pools == base.pools + 2 && now.pages_allocated == base.pages_allocated + 36,
	      "pools %llu -> %llu, pages %llu -> %llu", (unsigned long long)base.pools,
	      (unsigned long long)now.pools, (unsigned long long)base.pages_allocated,
	      (unsigned long long)now.pages_allocated);

	/* Map the lazy pool, write through it, read it back with pread. */
	unsigned char *p = mmap(NULL, info.info.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				info.info.mmap_offset);
	if (p == MAP_FAILED) {
		check("round 1: mmap the lazy pool", 0, "%s", strerror(errno));
	} else {
		memcpy(p, "round one", 9);
		char back[9] = { 0 };
		ssize_t n = pread(fd, back, 9, (off_t)info.info.mmap_offset);
		rc = state_gauges(fd, &now);
		check("round 1: a write through the lazy pool's mapping is what pread reads",
		      n == 9 && memcmp(back, "round one", 9) == 0, "pread %zd", n);
		check("round 1: the lazy pool faulted in (faults_served grew)",
		      rc == 0 && now.faults_served > base.faults_served, "faults %llu -> %llu",
		      (unsigned long long)base.faults_served, (unsigned long long)now.faults_served);
		munmap(p, info.info.bytes);
	}

	/* RING_CREATE / RING_INFO on the eager pool, then the destroys. */
	struct pktmap_ring_create ring = { .entries = 8, .pool_id = eager.req.id };
	rc = xioctl(fd, PKTMAP_IOC_RING_CREATE, &ring);
	check("round 1: RING_CREATE on the eager pool", rc == 0 && ring.id != 0, "rc %d", rc);
	struct pktmap_ring_info ri = { .id = ring.id };
	rc = xioctl(fd, PKTMAP_IOC_RING_INFO, &ri);
	check("round 1: RING_INFO describes it", rc == 0 && ri.entries == 8 && ri.pool_id == eager.req.id &&
	      ri.mmap_offset == PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_RING, ring.id), "rc %d", rc);
	struct pktmap_id id = { .id = eager.req.id };
	rc = xioctl(fd, PKTMAP_IOC_POOL_DESTROY, &id);
	check("round 1: POOL_DESTROY of a pool a ring names: EBUSY", rc == -EBUSY, "rc %d", rc);
	id.id = ring.id;
	rc = xioctl(fd, PKTMAP_IOC_RING_DESTROY, &id);
	check("round 1: RING_DESTROY", rc == 0, "rc %d", rc);
	id.id = eager.req.id;
	rc = xioctl(fd, PKTMAP_IOC_POOL_DESTROY, &id);
	check("round 1: POOL_DESTROY of the eager pool", rc == 0, "rc %d", rc);
	id.id = lazy.req.id;
	rc = xioctl(fd, PKTMAP_IOC_POOL_DESTROY, &id);
	check("round 1: POOL_DESTROY of the lazy pool", rc == 0, "rc %d", rc);

	/* A bad old request is refused as it was: buf_size 1000 is EINVAL. */
	struct pktmap_pool_create bad = { .buf_size = 1000, .buf_count = 1 };
	rc = xioctl(fd, PKTMAP_IOC_POOL_CREATE, &bad);
	check("round 1: POOL_CREATE with buf_size 1000: EINVAL", rc == -EINVAL, "rc %d", rc);

	/*
	 * A program built against a newer header: POOL_INFO of a 64-byte struct. Zeros past
	 * today's 48 bytes are served (and stay zero); a set byte there is E2BIG.
	 */
	struct pktmap_pool_create c = { .buf_size = 4096, .buf_count = 1 };
	rc = xioctl(fd, PKTMAP_IOC_POOL_CREATE, &c);
	unsigned char newer[64] __attribute__((aligned(8)));
	memset(newer, 0, sizeof(newer));
	memcpy(newer, &c.id, 4);
	rc = xioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, PKTMAP_IOC_MAGIC, 2, 64), newer);
	check("newer header: POOL_INFO of a 64-byte struct, zero past 48 bytes: served, tail left zero",
	      rc == 0 && all(newer + 48, 16, 0) && ((struct pktmap_pool_info *)newer)->bytes == 4096,
	      "rc %d", rc);
	newer[60] = 1;
	rc = xioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, PKTMAP_IOC_MAGIC, 2, 64), newer);
	check("newer header: POOL_INFO of a 64-byte struct with a field set past 48 bytes: E2BIG",
	      rc == -E2BIG, "rc %d", rc);
	rc = xioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, PKTMAP_IOC_MAGIC, 1, 20), newer);
	check("POOL_CREATE of a 20-byte struct (a size it never had): ENOTTY", rc == -ENOTTY, "rc %d", rc);
	id.id = c.id;
	xioctl(fd, PKTMAP_IOC_POOL_DESTROY, &id);

	rc = state_gauges(fd, &now);
	check("round 1: every gauge back to its baseline",
	      rc == 0 && now.pools == base.pools && now.rings == base.rings &&
		      now.pages_allocated == base.pages_allocated && now.live_mappings == base.live_mappings,
	      "pools %llu rings %llu pages %llu mappings %llu", (unsigned long long)now.pools,
	      (unsigned long long)now.rings, (unsigned long long)now.pages_allocated,
	      (unsigned long long)now.live_mappings);
	close(fd);
out:
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
