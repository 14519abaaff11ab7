// SPDX-License-Identifier: GPL-2.0
/*
 * probe: the fallback guest test program of scripts/guest-test, used only when driver/guest
 * (pktmap-guest) is missing or PKTMAP_GUEST_PROBE is set; it checks far less. It proves that each kernel hook of pktmap.ko
 * works: per-open state, ioctl, pread/pwrite, mmap (eager and lazy), VM_DONTEXPAND,
 * cleared VM_MAYWRITE, vm_ops .open/.close/.fault, and the module reference an open file holds.
 *
 * One line per check ("ok N - name" or "not ok N - name: why"), then "N passed, M failed".
 * Built static: gcc -static -O2 -Wall -Wextra -Werror -std=gnu11 -o probe probe.c -lpthread
 *
 * The numbers below mirror driver/abi/src (codec.rs PKTMAP layout, ioctl.rs); the real
 * guest crate uses pktmap-abi itself instead of copies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define PAGE 4096UL

/* PKTMAP layout: type in bits 12..15, id in bits 15..47. */
enum { T_STATE = 0, T_POOL = 1, T_RING = 2 };
static uint64_t enc(uint32_t type, uint32_t id)
{
	return ((uint64_t)id << 15) | ((uint64_t)type << 12);
}

struct pool_create { uint32_t buf_size, buf_count, flags, id; };
struct pool_info { uint32_t id, buf_size, buf_count, flags; uint64_t bytes, mmap_offset; };
struct res_id { uint32_t id; };
struct state {
	uint64_t magic, pools, rings, pages_allocated, pages_mapped, faults_served, live_mappings;
};

#define POOL_CREATE 0xc0105001u
#define POOL_INFO 0xc0205002u
#define POOL_DESTROY 0x40045003u
#define POOL_LAZY 1u
#define STATE_MAGIC 0x010070616d746b70ULL /* "pktmap\0\x01" little-endian */

static int passed, failed, numbered;

static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	numbered++;
	if (ok) {
		passed++;
		printf("ok %d - %s\n", numbered, name);
	} else {
		failed++;
		printf("not ok %d - %s: ", numbered, name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
}

static struct state read_state(int fd)
{
	struct state s;

	memset(&s, 0xff, sizeof(s));
	if (pread(fd, &s, sizeof(s), (off_t)enc(T_STATE, 0)) != (ssize_t)sizeof(s))
		printf("# pread(STATE) failed: %s\n", strerror(errno));
	return s;
}

static uint32_t pool_create(int fd, uint32_t buf_size, uint32_t count, uint32_t flags, int *err)
{
	struct pool_create req = { buf_size, count, flags, 0 };

	*err = ioctl(fd, POOL_CREATE, &req) ? errno : 0;
	return req.id;
}

static void *map(int fd, size_t len, int prot, int flags, uint64_t off, int *err)
{
	void *p = mmap(NULL, len, prot, flags, fd, (off_t)off);

	*err = p == MAP_FAILED ? errno : 0;
	return p;
}

/* Pages of [p, p+len) resident in this process's page tables. */
static int resident(void *p, size_t len)
{
	unsigned char vec[256];
	size_t i, n = len / PAGE;
	int count = 0;

	if (n > sizeof(vec) || mincore(p, len, vec))
		return -1;
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	return count;
}

static void fill(void *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		((unsigned char *)p)[i] = (unsigned char)(i * 31 + seed);
}

static int same(const void *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (((const unsigned char *)p)[i] != (unsigned char)(i * 31 + seed))
			return 0;
	return 1;
}

struct toucher { volatile unsigned char *p; size_t len; unsigned sum; };

static void *touch_all(void *arg)
{
	struct toucher *t = arg;
	size_t i;

	for (i = 0; i < t->len; i += PAGE)
		t->sum += t->p[i];
	return NULL;
}

int main(void)
{
	static unsigned char buf[8 * 4096], buf2[8 * 4096];
	struct state s0, s;
	int fd, fd2, err;
	uint32_t eager, lazy, id2;
	size_t plen = 4 * PAGE;
	unsigned char *st, *p, *q;
	pid_t pid;
	int status = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);

	fd = open("/dev/pktmap", O_RDWR | O_CLOEXEC);
	check(fd >= 0, "open /dev/pktmap", "%s", strerror(errno));
	if (fd < 0)
		goto out;
	s0 = read_state(fd);

	/* STATE: one read-only page; write access refused; VM_MAYWRITE cleared. */
	check(s0.magic == STATE_MAGIC, "pread STATE magic", "got %#llx",
	      (unsigned long long)s0.magic);
	st = map(fd, PAGE, PROT_READ, MAP_SHARED, enc(T_STATE, 0), &err);
	check(!err && ((struct state *)st)->magic == STATE_MAGIC, "mmap STATE read-only",
	      "%s", strerror(err));
	map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, enc(T_STATE, 0), &err);
	check(err == EPERM, "mmap STATE writable is EPERM", "got %s", strerror(err));
	if (st != MAP_FAILED) {
		err = mprotect(st, PAGE, PROT_READ | PROT_WRITE) ? errno : 0;
		check(err == EACCES, "mprotect STATE writable is EACCES (VM_MAYWRITE cleared)",
		      "got %s", strerror(err));
	}
	err = pwrite(fd, buf, 8, (off_t)enc(T_STATE, 0)) < 0 ? errno : 0;
	check(err == EPERM, "pwrite STATE is EPERM", "got %s", strerror(err));

	/* ioctl. */
	err = ioctl(fd, 0x5000, 0) ? errno : 0;
	check(err == ENOTTY, "unknown ioctl is ENOTTY", "got %s", strerror(err));
	pool_create(fd, 1000, 4, 0, &err);
	check(err == EINVAL, "POOL_CREATE buf_size 1000 is EINVAL", "got %s", strerror(err));
	err = ioctl(fd, POOL_CREATE, (void *)8) ? errno : 0;
	check(err == EFAULT, "POOL_CREATE bad pointer is EFAULT", "got %s", strerror(err));
	eager = pool_create(fd, 2048, 8, 0, &err);
	check(!err && eager != 0, "POOL_CREATE eager 8 x 2048", "%s", strerror(err));
	{
		struct pool_info info = { .id = eager };

		err = ioctl(fd, POOL_INFO, &info) ? errno : 0;
		check(!err && info.buf_size == 2048 && info.buf_count == 8 && info.bytes == plen &&
			      info.mmap_offset == enc(T_POOL, eager),
		      "POOL_INFO", "err %s bytes %llu offset %#llx", strerror(err),
		      (unsigned long long)info.bytes, (unsigned long long)info.mmap_offset);
	}
	s = read_state(fd);
	check(s.pools == s0.pools + 1 && s.pages_allocated == s0.pages_allocated + 4,
	      "STATE counts the pool", "pools %llu pages %llu", (unsigned long long)s.pools,
	      (unsigned long long)s.pages_allocated);
	if (st != MAP_FAILED)
		check(((volatile struct state *)st)->pools == s.pools,
		      "STATE mapping shows the driver's writes", "mapped pools %llu",
		      (unsigned long long)((volatile struct state *)st)->pools);

	/* Per-open state: a second open has its own, empty table. */
	fd2 = open("/dev/pktmap", O_RDWR | O_CLOEXEC);
	{
		struct pool_info info = { .id = eager };

		err = ioctl(fd2, POOL_INFO, &info) ? errno : 0;
		check(err == EINVAL, "second open does not see the first one's pool", "got %s",
		      strerror(err));
	}
	id2 = pool_create(fd2, 4096, 1, 0, &err);
	check(!err && id2 == eager, "second open numbers its own pools", "id %u err %s", id2,
	      strerror(err));

	/* Eager pool, MAP_SHARED: inserted at mmap, writes go both ways. */
	p = map(fd, plen, PROT_READ | PROT_WRITE, MAP_SHARED, enc(T_POOL, eager), &err);
	check(!err, "mmap eager pool shared", "%s", strerror(err));
	if (!err) {
		s = read_state(fd);
		check(resident(p, plen) == 4, "eager pool is mapped at mmap time", "resident %d",
		      resident(p, plen));
		fill(p, plen, 1);
		check(pread(fd, buf, plen, (off_t)enc(T_POOL, eager)) == (ssize_t)plen &&
			      same(buf, plen, 1),
		      "pread sees writes through the mapping", "mismatch");
		fill(buf, plen, 2);
		check(pwrite(fd, buf, plen, (off_t)enc(T_POOL, eager)) == (ssize_t)plen &&
			      same(p, plen, 2),
		      "the mapping sees pwrite", "mismatch");
		check(read_state(fd).faults_served == s.faults_served,
		      "touching an eager pool takes no fault", "faults went up");
		q = mremap(p, plen, 2 * plen, MREMAP_MAYMOVE);
		err = q == MAP_FAILED ? errno : 0;
		check(err == EFAULT, "mremap cannot grow (VM_DONTEXPAND)", "got %s",
		      strerror(err));

		/* munmap of the middle splits the VMA: .open for the new piece. */
		s = read_state(fd);
		munmap(p + PAGE, PAGE);
		check(read_state(fd).live_mappings == s.live_mappings + 1,
		      "splitting a mapping calls .open", "live %llu -> %llu",
		      (unsigned long long)s.live_mappings,
		      (unsigned long long)read_state(fd).live_mappings);
		/* fork copies both pieces: .open twice; the child's exit closes them. */
		pid = fork();
		if (pid == 0)
			_exit(same(p + 2 * PAGE, PAGE, (unsigned)(2 * PAGE * 31 + 2) & 0xff) ? 0 : 1);
		waitpid(pid, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fork child reads the inherited mapping", "status %#x", status);
		check(read_state(fd).live_mappings == s.live_mappings + 1,
		      "the fork child's .close balances its .open", "live %llu",
		      (unsigned long long)read_state(fd).live_mappings);
		munmap(p, PAGE);
		munmap(p + 2 * PAGE, 2 * PAGE);
		check(read_state(fd).live_mappings == s.live_mappings - 1,
		      "munmap calls .close for each piece", "live %llu",
		      (unsigned long long)read_state(fd).live_mappings);
	}

	/* Bad requests. */
	map(fd, plen + PAGE, PROT_READ, MAP_SHARED, enc(T_POOL, eager), &err);
	check(err == EINVAL, "mmap longer than the pool is EINVAL", "got %s", strerror(err));
	map(fd, PAGE, PROT_READ, MAP_SHARED, enc(T_POOL, 999), &err);
	check(err == EINVAL, "mmap of an unknown id is EINVAL", "got %s", strerror(err));
	map(fd, PAGE, PROT_READ, MAP_SHARED, enc(7, eager), &err);
	check(err == EINVAL, "mmap of an unknown type is EINVAL", "got %s", strerror(err));
	map(fd, PAGE, PROT_READ, MAP_SHARED, enc(T_POOL, eager) | (1ULL << 50), &err);
	check(err == EINVAL, "mmap with stray offset bits is EINVAL", "got %s", strerror(err));

	/* MAP_PRIVATE: writes are copied, the driver does not see them. */
	p = map(fd, plen, PROT_READ | PROT_WRITE, MAP_PRIVATE, enc(T_POOL, eager), &err);
	if (!err) {
		fill(p, plen, 3);
		check(pread(fd, buf, plen, (off_t)enc(T_POOL, eager)) == (ssize_t)plen &&
			      same(buf, plen, 2),
		      "MAP_PRIVATE writes are not seen by the driver", "driver saw them");
		munmap(p, plen);
	} else {
		check(0, "mmap eager pool private", "%s", strerror(err));
	}

	/* Lazy pool: pages come from .fault. */
	lazy = pool_create(fd, 4096, 8, POOL_LAZY, &err);
	check(!err, "POOL_CREATE lazy 8 x 4096", "%s", strerror(err));
	fill(buf, 8 * PAGE, 4);
	check(pwrite(fd, buf, 8 * PAGE, (off_t)enc(T_POOL, lazy)) == (ssize_t)(8 * PAGE),
	      "pwrite a lazy pool", "%s", strerror(errno));
	p = map(fd, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, enc(T_POOL, lazy), &err);
	check(!err && resident(p, 8 * PAGE) == 0, "lazy pool maps nothing at mmap time",
	      "err %s resident %d", strerror(err), err ? -1 : resident(p, 8 * PAGE));
	if (!err) {
		s = read_state(fd);
		check(p[5 * PAGE] == buf[5 * PAGE] && same(p + 5 * PAGE, PAGE,
							   (unsigned)(5 * PAGE * 31 + 4) & 0xff),
		      "first touch faults in the right page", "wrong data");
		check(read_state(fd).faults_served == s.faults_served + 1 &&
			      resident(p, 8 * PAGE) == 1,
		      ".fault served exactly one page", "faults %llu -> %llu",
		      (unsigned long long)s.faults_served,
		      (unsigned long long)read_state(fd).faults_served);
		/* Split, then fault beyond the split: the index must come from the saved pgoff. */
		munmap(p + 2 * PAGE, PAGE);
		check(same(p + 6 * PAGE, PAGE, (unsigned)(6 * PAGE * 31 + 4) & 0xff),
		      "fault after a split maps the right page", "wrong data");
		/* Two threads fault the same pages at once. */
		{
			pthread_t t1, t2;
			struct toucher a = { p + 3 * PAGE, 2 * PAGE, 0 }, b = a;

			pthread_create(&t1, NULL, touch_all, &a);
			pthread_create(&t2, NULL, touch_all, &b);
			pthread_join(t1, NULL);
			pthread_join(t2, NULL);
			check(a.sum == b.sum && resident(p + 3 * PAGE, 2 * PAGE) == 2,
			      "concurrent faults on the same pages", "sums %u %u", a.sum, b.sum);
		}
		/* A write fault on a shared mapping is seen by the driver. */
		p[7 * PAGE] = 0xab;
		check(pread(fd, buf2, 8 * PAGE, (off_t)enc(T_POOL, lazy)) == (ssize_t)(8 * PAGE) &&
			      buf2[7 * PAGE] == 0xab,
		      "write fault on a shared lazy mapping reaches the driver", "not seen");
		munmap(p, 2 * PAGE);
		munmap(p + 3 * PAGE, 5 * PAGE);
	}
	s = read_state(fd);
	p = map(fd, 8 * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, enc(T_POOL, lazy), &err);
	check(!err && resident(p, 8 * PAGE) == 8 &&
		      read_state(fd).faults_served == s.faults_served + 8,
	      "MAP_POPULATE faults in every lazy page", "err %s", strerror(err));
	if (!err)
		munmap(p, 8 * PAGE);
	p = map(fd, 8 * PAGE, PROT_READ, MAP_SHARED, enc(T_POOL, lazy), &err);
	if (!err) {
		err = madvise(p, 8 * PAGE, MADV_POPULATE_READ) ? errno : 0;
		check(!err && resident(p, 8 * PAGE) == 8, "MADV_POPULATE_READ on a lazy pool",
		      "%s", strerror(err));
		munmap(p, 8 * PAGE);
	}

	/* An open file pins the module: unloading now is refused. */
	err = syscall(SYS_delete_module, "pktmap", O_NONBLOCK) ? errno : 0;
	check(err == EWOULDBLOCK || err == EBUSY, "rmmod while open is refused", "got %s",
	      strerror(err));

	/* Destroy and close while mapped: the mapping keeps the pages. */
	p = map(fd, plen, PROT_READ | PROT_WRITE, MAP_SHARED, enc(T_POOL, eager), &err);
	if (!err) {
		struct res_id rid = { eager };

		err = ioctl(fd, POOL_DESTROY, &rid) ? errno : 0;
		check(!err, "POOL_DESTROY while mapped", "%s", strerror(err));
		err = ioctl(fd, POOL_DESTROY, &rid) ? errno : 0;
		check(err == EINVAL, "second POOL_DESTROY is EINVAL", "got %s", strerror(err));
		check(same(p, plen, 2), "a destroyed pool's mapping keeps its data", "mismatch");
		check(read_state(fd).pools == s0.pools + 3, "a mapped, destroyed pool stays counted",
		      "pools %llu", (unsigned long long)read_state(fd).pools);
		close(fd2);
		close(fd);
		fill(p, plen, 9);
		check(same(p, plen, 9), "the mapping outlives close()", "mismatch");
		munmap(p, plen);
	}
	if (st != MAP_FAILED)
		munmap(st, PAGE);

	/* Everything freed: the gauges are back where they started. */
	fd = open("/dev/pktmap", O_RDWR | O_CLOEXEC);
	s = read_state(fd);
	check(s.pools == s0.pools && s.pages_allocated == s0.pages_allocated &&
		      s.live_mappings == s0.live_mappings,
	      "gauges return to baseline", "pools %llu pages %llu live %llu",
	      (unsigned long long)s.pools, (unsigned long long)s.pages_allocated,
	      (unsigned long long)s.live_mappings);
	close(fd);
out:
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
