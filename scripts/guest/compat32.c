/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * compat32: a 32-bit caller of /dev/pktmap and of a pool file (the ioctls reach the driver
 * through compat_ioctl). Built static for i386 (gcc -m32 -static, scripts/lib/guest-prog.sh)
 * and run by `pktmap-guest trust` as /compat32 DEVICE; prints `ok   NAME` or
 * `FAIL NAME: DETAIL` per check and exits non-zero if any failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pktmap.h"

_Static_assert(sizeof(void *) == 4, "compat32 must be built for a 32-bit target");
_Static_assert(sizeof(struct pktmap_pool_info) == 48, "struct pktmap_pool_info layout");
_Static_assert(sizeof(struct pktmap_pool_create) == 32, "struct pktmap_pool_create layout");

static int failed;

static void check(const char *name, int ok, const char *detail)
{
	if (ok) {
		printf("ok   %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, detail);
		failed = 1;
	}
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/pktmap";
	int dev = open(path, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		check("open the device", 0, strerror(errno));
		return 1;
	}
	struct pktmap_pool_create create = { .buf_size = 4096, .buf_count = 4 };
	int rc = ioctl(dev, PKTMAP_IOC_POOL_CREATE, &create);
	check("POOL_CREATE through the device", rc == 0, strerror(errno));
	if (rc != 0)
		return 1;
	struct pktmap_pool_info info = { .id = create.id };
	rc = ioctl(dev, PKTMAP_IOC_POOL_INFO, &info);
	check("POOL_INFO through the device", rc == 0 && info.bytes == 4 * 4096 &&
	      info.mmap_offset == PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, create.id),
	      rc ? strerror(errno) : "wrong answer");
	struct pktmap_ring_create ring = { .entries = 16, .pool_id = create.id };
	rc = ioctl(dev, PKTMAP_IOC_RING_CREATE, &ring);
	struct pktmap_ring_info rinfo = { .id = ring.id };
	int rc2 = rc ? rc : ioctl(dev, PKTMAP_IOC_RING_INFO, &rinfo);
	check("RING_CREATE and RING_INFO through the device",
	      rc == 0 && rc2 == 0 && rinfo.pool_id == create.id, strerror(errno));
	struct pktmap_id rid = { .id = ring.id };
	if (rc == 0)
		ioctl(dev, PKTMAP_IOC_RING_DESTROY, &rid);

	struct pktmap_pool_export exp = { .id = create.id };
	rc = ioctl(dev, PKTMAP_IOC_POOL_EXPORT, &exp);
	check("POOL_EXPORT through the device", rc == 0 && exp.fd >= 0, strerror(errno));
	if (rc == 0) {
		struct pktmap_pool_info finfo = { .id = 0 };
		rc = ioctl(exp.fd, PKTMAP_IOC_POOL_INFO, &finfo);
		check("POOL_INFO through the pool file", rc == 0 && finfo.bytes == info.bytes &&
		      finfo.mmap_offset == PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 0),
		      rc ? strerror(errno) : "wrong answer");
		rc = ioctl(exp.fd, PKTMAP_IOC_POOL_DESTROY, &rid);
		check("another ioctl on the pool file: ENOTTY", rc == -1 && errno == ENOTTY,
		      rc ? strerror(errno) : "succeeded");
		unsigned char *p = mmap(NULL, info.bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
					exp.fd, PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 0));
		int mapped = p != MAP_FAILED;
		if (mapped) {
			p[5] = 42;
			/* byte 5 of the pool, read back through the device */
			unsigned char buf[8] = { 0 };
			mapped = pread(dev, buf, sizeof buf, info.mmap_offset) == sizeof buf &&
				 buf[5] == 42 && msync(p, info.bytes, MS_SYNC) == 0;
			munmap(p, info.bytes);
		}
		check("a 32-bit map of the pool file writes the pool; msync(MS_SYNC) succeeds",
		      mapped, strerror(errno));
		close(exp.fd);
	}
	struct pktmap_id pid = { .id = create.id };
	rc = ioctl(dev, PKTMAP_IOC_POOL_DESTROY, &pid);
	check("POOL_DESTROY through the device", rc == 0, strerror(errno));
	close(dev);
	return failed;
}
