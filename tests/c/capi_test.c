/*
 * The C contract of pktmap_resource_mmap / pktmap_resource_munmap, checked on memfd-backed
 * resources (no driver needed). Built and run by tests/capi.rs against libpktmap.a and
 * libpktmap.so.
 *
 *   capi_test          run the checks; prints one line per check and "N passed, M failed"
 *   capi_test --abi    print every header constant and struct size as "NAME VALUE" lines
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pktmap.h>

static int passed, failed;

#define CHECK(cond, ...)                                   \
	do {                                               \
		if (cond) {                                \
			passed++;                          \
			printf("ok   ");                   \
		} else {                                   \
			failed++;                          \
			printf("FAIL ");                   \
		}                                          \
		printf(__VA_ARGS__);                       \
		printf("  [%s]\n", #cond);                 \
	} while (0)

#define POOL_ID 3
#define FILE_BYTES (1 << 20)

static int pool_fd(void)
{
	int fd = memfd_create("pktmap-capi", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, FILE_BYTES) < 0) {
		perror("memfd");
		exit(2);
	}
	return fd;
}

/* Runs fn in a child and returns the signal that killed it, or 0. */
static int child_signal(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void write_byte(void *p)
{
	*(volatile char *)p = 1;
}

static void print_abi(void)
{
#define P(name) printf("%s %llu\n", #name, (unsigned long long)(name))
	P(PKTMAP_VERSION_MAJOR);
	P(PKTMAP_VERSION_MINOR);
	P(PKTMAP_VERSION_PATCH);
	P(PKTMAP_TYPE_SHIFT);
	P(PKTMAP_ID_SHIFT);
	P(PKTMAP_ID_WIDTH);
	P(PKTMAP_TYPE_STATE);
	P(PKTMAP_TYPE_POOL);
	P(PKTMAP_TYPE_RING);
	P(PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 7));
	P(PKTMAP_MMAP_OFFSET_POPULATE);
	P(PKTMAP_MMAP_FLAG_READONLY);
	P(PKTMAP_MMAP_FLAG_FIXED);
	P(PKTMAP_MMAP_FLAG_POPULATE);
	P(PKTMAP_POOL_LAZY);
	P(PKTMAP_POOL_CONTIG);
	P(PKTMAP_POOL_HUGE);
	P(PKTMAP_CACHE_WB);
	P(PKTMAP_CACHE_WC);
	P(PKTMAP_DEFAULT_FAULT_AROUND);
	P(PKTMAP_MAX_FAULT_AROUND);
	P(PKTMAP_HUGE_CHUNK_PAGES);
	P(PKTMAP_MAX_CONTIG_CHUNK_PAGES);
	P(PKTMAP_EXPORT_READONLY);
	P(PKTMAP_MIN_BUF_SIZE);
	P(PKTMAP_MAX_BUF_SIZE);
	P(PKTMAP_MAX_POOL_BYTES);
	P(PKTMAP_MAX_RING_ENTRIES);
	P(PKTMAP_MAX_RESOURCES);
	P(PKTMAP_IOC_POOL_CREATE);
	P(PKTMAP_IOC_POOL_INFO);
	P(PKTMAP_IOC_POOL_DESTROY);
	P(PKTMAP_IOC_RING_CREATE);
	P(PKTMAP_IOC_RING_INFO);
	P(PKTMAP_IOC_RING_DESTROY);
	P(PKTMAP_IOC_POOL_CHUNK);
	P(PKTMAP_IOC_POOL_EXPORT);
	P(PKTMAP_STATE_MAGIC);
	P(PKTMAP_RING_DESC_OFFSET);
	P(sizeof(struct pktmap_pool_create));
	P(sizeof(struct pktmap_pool_info));
	P(sizeof(struct pktmap_ring_create));
	P(sizeof(struct pktmap_ring_info));
	P(sizeof(struct pktmap_id));
	P(sizeof(struct pktmap_state));
	P(sizeof(struct pktmap_ring_header));
	P(sizeof(struct pktmap_desc));
	P(sizeof(struct pktmap_pool_chunk));
	P(sizeof(struct pktmap_pool_export));
	P(offsetof(struct pktmap_pool_create, fault_around));
	P(offsetof(struct pktmap_pool_create, reserved));
	P(offsetof(struct pktmap_pool_info, fault_around));
	P(offsetof(struct pktmap_pool_info, chunk_bytes));
	P(offsetof(struct pktmap_pool_chunk, phys));
	P(offsetof(struct pktmap_pool_export, fd));
	P(PKTMAP_RING_PACKET);
	P(PKTMAP_ATTACH_MIRROR);
	P(PKTMAP_MAX_ATTACHMENTS);
	P(PKTMAP_IOC_ATTACH);
	P(PKTMAP_IOC_DETACH);
	P(PKTMAP_IOC_KICK);
	P(PKTMAP_PACKET_RING_MAGIC);
	P(PKTMAP_PACKET_RING_VERSION);
	P(PKTMAP_PACKET_PRODUCER_OFFSET);
	P(PKTMAP_PACKET_CONSUMER_OFFSET);
	P(PKTMAP_PACKET_WAKEUP_OFFSET);
	P(PKTMAP_PACKET_COUNTERS_OFFSET);
	P(PKTMAP_PACKET_COUNTER_WORDS);
	P(PKTMAP_PACKET_DESC_OFFSET);
	P(PKTMAP_DESC_TRUNCATED);
	P(PKTMAP_DESC_VLAN);
	P(PKTMAP_DESC_CSUM_PARTIAL);
	P(PKTMAP_DESC_CSUM_VALID);
	P(PKTMAP_DESC_GSO);
	P(PKTMAP_PKT_RX_PACKETS);
	P(PKTMAP_PKT_RX_BYTES);
	P(PKTMAP_PKT_RX_RING_FULL);
	P(PKTMAP_PKT_RX_OVERSIZE);
	P(PKTMAP_PKT_RX_INVALID_DESC);
	P(PKTMAP_PKT_RX_GSO);
	P(PKTMAP_PKT_RX_COPY_ERRORS);
	P(PKTMAP_PKT_WAKEUPS);
	P(PKTMAP_PKT_TX_PACKETS);
	P(PKTMAP_PKT_TX_BYTES);
	P(PKTMAP_PKT_TX_INVALID_DESC);
	P(PKTMAP_PKT_TX_ERRORS);
	P(PKTMAP_PKT_KICKS);
	P(PKTMAP_PKT_COUNTERS);
	P(sizeof(struct pktmap_attach));
	P(sizeof(struct pktmap_packet_ring));
	P(sizeof(struct pktmap_packet_desc));
	P(offsetof(struct pktmap_attach, id));
	P(offsetof(struct pktmap_attach, reserved));
	P(offsetof(struct pktmap_packet_ring, desc_size));
	P(offsetof(struct pktmap_packet_desc, flags));
	P(offsetof(struct pktmap_packet_desc, vlan_tci));
#undef P
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--abi") == 0) {
		print_abi();
		return 0;
	}
	long page = sysconf(_SC_PAGESIZE);
	int fd = pool_fd();
	off_t pool_off = (off_t)PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, POOL_ID);
	void *p = NULL;
	int rc;

	/* The library linked is the one the header describes. */
	char version[32];
	snprintf(version, sizeof version, "%d.%d.%d", PKTMAP_VERSION_MAJOR, PKTMAP_VERSION_MINOR,
		 PKTMAP_VERSION_PATCH);
	CHECK(strcmp(version, PKTMAP_VERSION_STRING) == 0, "PKTMAP_VERSION_STRING %s",
	      PKTMAP_VERSION_STRING);
	CHECK(PKTMAP_VERSION == ((PKTMAP_VERSION_MAJOR << 16) | (PKTMAP_VERSION_MINOR << 8) |
				 PKTMAP_VERSION_PATCH),
	      "PKTMAP_VERSION %#x", PKTMAP_VERSION);
	CHECK(pktmap_version() == PKTMAP_VERSION, "pktmap_version() %#x, header %#x",
	      pktmap_version(), PKTMAP_VERSION);

	/* A plain shared mapping reaches the file at the encoded offset. */
	errno = 4242;
	rc = pktmap_resource_mmap(fd, PKTMAP_TYPE_POOL, POOL_ID, 2 * page, 0, &p);
	CHECK(rc == 0 && p != NULL, "map POOL %d: rc %d", POOL_ID, rc);
	CHECK(errno == 4242, "success leaves errno alone (%d)", errno);
	memcpy((char *)p + page, "hello", 5);
	char buf[5] = { 0 };
	CHECK(pread(fd, buf, 5, pool_off + page) == 5 && memcmp(buf, "hello", 5) == 0,
	      "write through the mapping lands at offset %#llx + page", (unsigned long long)pool_off);
	errno = 4242;
	CHECK(pktmap_resource_munmap(p, 2 * page) == 0 && errno == 4242, "munmap: 0, errno kept");

	/* Failures return -errno and leave errno and *p_out alone. */
	struct {
		const char *what;
		int fd;
		int type;
		unsigned long id;
		unsigned bytes;
		int flags;
		int want;
	} bad[] = {
		{ "unknown flag bit 8", fd, PKTMAP_TYPE_POOL, 1, 4096, 8, -EINVAL },
		{ "negative flags", fd, PKTMAP_TYPE_POOL, 1, 4096, -1, -EINVAL },
		{ "unknown type 3", fd, 3, 1, 4096, 0, -EINVAL },
		{ "type 200 outside the field", fd, 200, 1, 4096, 0, -EINVAL },
		{ "id beyond 32 bits", fd, PKTMAP_TYPE_POOL, 1ul << 32, 4096, 0, -EINVAL },
		{ "zero bytes", fd, PKTMAP_TYPE_POOL, 1, 0, 0, -EINVAL },
		{ "negative fd", -1, PKTMAP_TYPE_POOL, 1, 4096, 0, -EBADF },
		{ "closed fd", 1000, PKTMAP_TYPE_POOL, 1, 4096, 0, -EBADF },
		/* Refused before the mmap: touching it would raise SIGBUS. */
		{ "past the end of the file", fd, PKTMAP_TYPE_POOL, 1000, 4096, 0, -EINVAL },
		{ "POPULATE past the end of the file", fd, PKTMAP_TYPE_POOL, 1000, 4096,
		  PKTMAP_MMAP_FLAG_POPULATE, -EINVAL },
		{ "FIXED at address 0", fd, PKTMAP_TYPE_POOL, 1, 4096, PKTMAP_MMAP_FLAG_FIXED,
		  -EINVAL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		void *out = NULL;
		errno = 4242;
		rc = pktmap_resource_mmap(bad[i].fd, bad[i].type, bad[i].id, bad[i].bytes,
					  bad[i].flags, &out);
		CHECK(rc == bad[i].want && errno == 4242 && out == NULL,
		      "%s: rc %d (want %d), errno %d", bad[i].what, rc, bad[i].want, errno);
	}

	/* The errnos the header lists that come from the file, not from pktmap's checks. */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int rdonly = open(path, O_RDONLY | O_CLOEXEC);
	int sealed = memfd_create("pktmap-capi-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int pipes[2];
	if (rdonly < 0 || sealed < 0 || ftruncate(sealed, FILE_BYTES) < 0 ||
	    fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE) < 0 || pipe2(pipes, O_CLOEXEC) < 0) {
		perror("errno fixtures");
		exit(2);
	}
	struct {
		const char *what;
		int fd;
		int flags;
		int want;
	} from_file[] = {
		{ "a read-only fd mapped writable", rdonly, 0, -EACCES },
		{ "a write-sealed memfd mapped writable", sealed, 0, -EPERM },
		{ "a pipe", pipes[0], PKTMAP_MMAP_FLAG_READONLY, -ENODEV },
	};
	for (size_t i = 0; i < sizeof from_file / sizeof from_file[0]; i++) {
		void *out = NULL;
		errno = 4242;
		rc = pktmap_resource_map(from_file[i].fd, PKTMAP_TYPE_POOL, 1, 4096, from_file[i].flags,
					 &out);
		CHECK(rc == from_file[i].want && errno == 4242 && out == NULL,
		      "%s: rc %d (want %d)", from_file[i].what, rc, from_file[i].want);
	}
	rc = pktmap_resource_map(rdonly, PKTMAP_TYPE_POOL, 1, 4096, PKTMAP_MMAP_FLAG_READONLY, &p);
	CHECK(rc == 0, "the read-only fd maps READONLY (rc %d)", rc);
	if (rc == 0)
		pktmap_resource_unmap(p, 4096);
	close(rdonly);
	close(sealed);
	close(pipes[0]);
	close(pipes[1]);
	p = (void *)(uintptr_t)(page + 1);
	rc = pktmap_resource_map(fd, PKTMAP_TYPE_POOL, 1, 4096, PKTMAP_MMAP_FLAG_FIXED, &p);
	CHECK(rc == -EINVAL && p == (void *)(uintptr_t)(page + 1),
	      "FIXED at an unaligned address: rc %d", rc);

	errno = 4242;
	rc = pktmap_resource_mmap(fd, PKTMAP_TYPE_POOL, 1, 4096, 0, NULL);
	CHECK(rc == -EFAULT && errno == 4242, "null p_out: rc %d", rc);
	errno = 4242;
	rc = pktmap_resource_munmap((char *)p + 1, 4096);
	CHECK(rc == -EINVAL && errno == 4242, "munmap of an unaligned address: rc %d", rc);
	CHECK(pktmap_resource_munmap(p, -1) == -EINVAL, "munmap of a negative length");

	/* READONLY: reads work, a write kills with SIGSEGV. */
	rc = pktmap_resource_mmap(fd, PKTMAP_TYPE_POOL, POOL_ID, page, PKTMAP_MMAP_FLAG_READONLY, &p);
	CHECK(rc == 0 && memcmp(p, "\0\0\0\0", 4) == 0, "READONLY map reads");
	CHECK(child_signal(write_byte, p) == SIGSEGV, "READONLY write faults with SIGSEGV");
	pktmap_resource_munmap(p, page);

	/* FIXED maps exactly at *p_out over a reserved range (Onload's MAP_FIXED contract). */
	void *reserve = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *want = (char *)reserve + page;
	p = want;
	rc = pktmap_resource_mmap(fd, PKTMAP_TYPE_POOL, POOL_ID, 2 * page,
				  PKTMAP_MMAP_FLAG_FIXED | PKTMAP_MMAP_FLAG_POPULATE, &p);
	CHECK(rc == 0 && p == want, "FIXED lands at the reserved address (rc %d)", rc);
	CHECK(memcmp((char *)p + page, "hello", 5) == 0, "FIXED mapping shows the resource");
	munmap(reserve, 4 * page);

	/* The size_t pair maps and unmaps 3 GiB, which no `int` or `unsigned` length can say. */
	int big = memfd_create("pktmap-capi-big", MFD_CLOEXEC);
	size_t big_len = (size_t)3 << 30;
	off_t big_off = (off_t)PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 1);
	if (big < 0 || ftruncate(big, big_off + (off_t)big_len) < 0) {
		perror("memfd");
		exit(2);
	}
	errno = 4242;
	p = NULL;
	rc = pktmap_resource_map(big, PKTMAP_TYPE_POOL, 1, big_len, 0, &p);
	CHECK(rc == 0 && p != NULL && errno == 4242, "size_t map of 3 GiB (rc %d)", rc);
	((volatile char *)p)[big_len - 1] = 7;
	CHECK(pktmap_resource_unmap(p, big_len) == 0 && errno == 4242, "size_t unmap of 3 GiB");
	CHECK(pktmap_resource_unmap(NULL, 4096) == -EINVAL, "size_t unmap of NULL");
	CHECK(pktmap_resource_unmap(p, 0) == -EINVAL, "size_t unmap of zero bytes");
	close(big);

	/* A pool fd across a UNIX socket (a memfd stands in for PKTMAP_IOC_POOL_EXPORT's file). */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	int shared = pool_fd();
	errno = 4242;
	CHECK(pktmap_pool_send(sv[0], shared, 1) == 0 && errno == 4242, "pool_send: 0, errno kept");
	int ro = -1;
	int got = pktmap_pool_recv(sv[1], &ro);
	struct stat st;
	CHECK(got >= 0 && ro == 1 && errno == 4242, "pool_recv: fd %d, read_only %d", got, ro);
	CHECK(got >= 0 && fstat(got, &st) == 0 && st.st_size == FILE_BYTES,
	      "the received fd is the same file");
	CHECK(pktmap_pool_send(-1, shared, 0) == -EBADF && errno == 4242, "pool_send bad socket");
	CHECK(pktmap_pool_recv(-1, NULL) == -EBADF && errno == 4242, "pool_recv bad socket");
	CHECK(pktmap_pool_send(shared, shared, 0) == -ENOTSOCK, "pool_send on a memfd: -ENOTSOCK");
	CHECK(pktmap_pool_recv(shared, NULL) == -ENOTSOCK, "pool_recv on a memfd: -ENOTSOCK");
	close(sv[0]);
	CHECK(pktmap_pool_recv(sv[1], NULL) == -EINVAL && errno == 4242,
	      "pool_recv of a closed peer: -EINVAL (no fd)");
	close(sv[1]);
	close(shared);
	if (got >= 0)
		close(got);

	/* The packet calls: 0 or -errno, errno kept (no /dev/pktmap here: a memfd has no ioctl). */
	int plain = pool_fd();
	struct pktmap_attach att;
	memset(&att, 0, sizeof att);
	att.ifindex = 1;
	att.pool_id = 1;
	att.rx_ring = 1;
	errno = 4242;
	CHECK(pktmap_packet_attach(plain, &att) == -ENOTTY && errno == 4242 && att.id == 0,
	      "packet_attach on a memfd: -ENOTTY, errno kept, no id");
	CHECK(pktmap_packet_attach(plain, NULL) == -EFAULT && errno == 4242,
	      "packet_attach of NULL: -EFAULT");
	CHECK(pktmap_packet_detach(-1, 1) == -EBADF && errno == 4242, "packet_detach bad fd");
	CHECK(pktmap_packet_kick(-1, 1) == -EBADF && errno == 4242, "packet_kick bad fd");
	CHECK(pktmap_packet_kick(plain, 1) == -ENOTTY && errno == 4242,
	      "packet_kick on a memfd: -ENOTTY");
	close(plain);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
