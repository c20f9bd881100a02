/*
 * A guest workload with a working set: of TOTAL MiB it keeps HOT MiB busy (each operation checks a
 * page and rewrites it with a new version) and rarely (one operation in 16384) reads a cold page, so
 * the kernel keeps the hot set resident and lets the rest swap, and a working-set tracker whose
 * threshold is a page-in a second sees the hot set as the working set. Every second it prints how many operations it has done;
 * after SECONDS it checks every page and prints the verdict.
 *
 * A page holds its index, its version and words derived from both; a separate table (itself hot
 * memory) holds each page's version. A page that came back from swap or from a migration wrong, from
 * the wrong offset, or older than its last write fails the check.
 *
 * Usage: hotset TOTAL_MB HOT_MB SECONDS [OPS_PER_SECOND]  (0 or none: as fast as it can)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t word(uint64_t p, uint64_t v, uint64_t w) {
  return (p * 0x9E3779B97F4A7C15ULL) ^ (v * 0xC2B2AE3D27D4EB4FULL) ^ (w * 0xBF58476D1CE4E5B9ULL);
}

static void fill(uint64_t *page, uint64_t p, uint64_t v) {
  page[0] = p;
  page[1] = v;
  for (size_t w = 2; w < 512; w++) {
    page[w] = word(p, v, w);
  }
}

static int good(const uint64_t *page, uint64_t p, uint64_t v) {
  if (page[0] != p || page[1] != v) {
    return 0;
  }
  for (size_t w = 2; w < 512; w++) {
    if (page[w] != word(p, v, w)) {
      return 0;
    }
  }
  return 1;
}

static uint64_t reported = 0;

/* Checks a page; the first few bad ones are described: which page it holds, at which version. */
static int check(const uint64_t *page, uint64_t p, uint64_t v, const char *where) {
  if (good(page, p, v)) {
    return 1;
  }
  if (reported++ < 16) {
    size_t words = 0;
    for (size_t w = 2; w < 512; w++) {
      words += page[w] != word(page[0], page[1], w);
    }
    printf("VMLAB: bad %s page %llu (expected version %llu): holds page %llu version %llu, %zu words unlike it\n",
        where, (unsigned long long) p, (unsigned long long) v, (unsigned long long) page[0],
        (unsigned long long) page[1], words);
    fflush(stdout);
  }
  return 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng = 0x243F6A8885A308D3ULL;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

int main(int argc, char **argv) {
  size_t total = argc > 1 ? strtoul(argv[1], NULL, 10) : 320;
  size_t hot = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
  unsigned secs = argc > 3 ? strtoul(argv[3], NULL, 10) : 60;
  uint64_t cap = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
  size_t pages = total * 256;
  size_t hotPages = hot * 256;
  if (hotPages == 0 || hotPages > pages) {
    printf("VMLAB: hotset FAILED: hot set of %zu MiB in %zu MiB\n", hot, total);
    return 1;
  }
  uint64_t *mem = malloc(total << 20);
  uint32_t *version = calloc(pages, sizeof(uint32_t));
  if (mem == NULL || version == NULL) {
    printf("VMLAB: hotset FAILED: cannot allocate %zu MiB\n", total);
    return 1;
  }
  for (size_t p = 0; p < pages; p++) {
    fill(mem + p * 512, p, 0);
  }
  uint64_t start = now_ms();
  printf("VMLAB: hotset running: %zu MiB, %zu MiB hot, %u s, %llu ops/s at most\n", total, hot, secs,
      (unsigned long long) cap);
  fflush(stdout);
  uint64_t ops = 0, cold = 0, bad = 0, last = start;
  for (;;) {
    for (int i = 0; i < 256; i++) {
      uint64_t r = next();
      if ((r & 16383) == 0) {
        // A cold page: read and checked, not written, so it may stay swapped out.
        size_t p = hotPages + (r >> 8) % (pages - hotPages + (pages == hotPages));
        if (p < pages) {
          bad += !check(mem + p * 512, p, version[p], "cold");
          cold++;
        }
      } else {
        size_t p = (r >> 8) % hotPages;
        uint64_t *page = mem + p * 512;
        bad += !check(page, p, version[p], "hot");
        fill(page, p, ++version[p]);
      }
      ops++;
    }
    uint64_t t = now_ms();
    if (cap > 0) {
      // Paced: never ahead of cap operations per second since the start.
      uint64_t due = start + ops * 1000 / cap;
      if (due > t) {
        struct timespec d = {(time_t) ((due - t) / 1000), (long) ((due - t) % 1000) * 1000000L};
        nanosleep(&d, NULL);
        t = now_ms();
      }
    }
    if (t - last >= 1000) {
      last = t;
      printf("VMLAB: t=%llu ops=%llu cold=%llu bad=%llu\n", (unsigned long long) (t - start),
          (unsigned long long) ops, (unsigned long long) cold, (unsigned long long) bad);
      fflush(stdout);
      if (t - start >= (uint64_t) secs * 1000) {
        break;
      }
    }
  }
  for (size_t p = 0; p < pages; p++) {
    bad += !check(mem + p * 512, p, version[p], p < hotPages ? "hot" : "cold");
  }
  printf("VMLAB: hotset %s: %zu MiB, %zu pages checked, %llu operations, %llu bad\n", bad ? "FAILED" : "OK",
      total, pages, (unsigned long long) ops, (unsigned long long) bad);
  fflush(stdout);
  return bad ? 1 : 0;
}
