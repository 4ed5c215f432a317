/* Native fast path for plain combo and URL:login:password lines (exposure.dumps._fastscan).
 *
 * Tens of millions of lines of a list look like `someone@example.com:password` or
 * `https://site/login:someone@example.com:password`. For those, the Python path spends
 * microseconds per line on objects, normalisation and hashing.
 * This module does the same work in C for exactly the lines where the outcome is certain, and
 * hands every other line back to the Python path, which stays the single definition of the
 * rules (tests compare both on generated lines):
 *
 *   split_combo(data, start, end)
 *                      reads a block of complete UTF-8 lines of a combo list (a range of the
 *                      chunk the decoder read) and returns which lines are "fast" records
 *                      (e-mail-first lines, and URL lines the ULP grammar's fast regex reads)
 *                      with their field offsets, and which must be parsed by
 *                      exposure.dumps.formats.lists.iter_combo;
 *   split_ulp(...)     the same for a URL:login:password list (iter_ulp);
 *   match_combo(...)   fingerprints each fast record's login (HMAC-SHA256 with the pepper,
 *                      as exposure.domain.fingerprints.identifier_fingerprint), tests the 64-bit prefix
 *                      against the enrolled index and, for records that cannot match, emits the
 *                      SHA-1 of the password for the corpus. Records that may match, or whose
 *                      login or password needs a rule only Python has (IDNA, hash detection),
 *                      are returned by position for the Python path.
 *
 * scan_lines counts a block's lines for the decoder and screens it for non-ASCII and NUL.
 * Plaintext never leaves this module except as the offsets the caller already holds.
 * All of them release the GIL while they scan: the pipeline matches blocks on several threads.
 * Hashing is most of match_combo's time: where the CPU has the x86 SHA extensions, keys and
 * digests are computed two at a time with them (see "SHA extensions" below), else by OpenSSL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX copies are the cheapest HMAC with a fixed key */
#include <openssl/sha.h>

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h> /* 16 bytes at a time where every x86-64 CPU can (scalar elsewhere) */
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SHA_NI_CODE 1 /* compiled for x86 SHA extensions, used when the CPU has them */
#include <cpuid.h>
#include <immintrin.h>
#define SHA_NI __attribute__((target("sha,sse4.1,ssse3")))
#endif

/* Mirrors of the Python constants (checked by tests/unit/test_fastscan.py). */
#define SHORT_LINE 16384     /* exposure.dumps.formats.lines.SHORT_LINE */
#define MAX_LOGIN_CHARS 320  /* exposure.dumps.formats.combo.MAX_LOGIN_CHARS */
#define MAX_EMAIL 254        /* exposure.domain.identity._MAX_EMAIL */
#define MAX_DOMAIN 253
#define MAX_LABEL 63
#define GROUP 16 /* records hashed ahead of their index probes (see match_combo) */

/* A fast record: its line (index in the block) and the offsets of its fields in the text.
 * host_start == host_end == 0 for a combo record; a ULP record has the URL's host there. */
typedef struct {
    int32_t line, login_start, login_end, pw_start, pw_end, host_start, host_end;
} FastRecord;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buffer;

static int buffer_add(Buffer *b, const void *src, Py_ssize_t n) {
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_RawRealloc(b->data, (size_t)cap);
        if (grown == NULL) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

static PyObject *buffer_to_bytes(Buffer *b) {
    PyObject *out = PyBytes_FromStringAndSize(b->data ? b->data : "", b->len);
    PyMem_RawFree(b->data);
    b->data = NULL;
    return out;
}

/* First characters that send a line to exposure.dumps.formats.lines.noise (ASCII part of
 * NOISE_FIRST; a TAB never reaches here because it is not printable). */
static int noise_first(unsigned char c) {
    return strchr("#/<=-*_~+>|[ ", c) != NULL && c != '\0';
}

/* A line both list parsers take without screening or noise checks: short, printable ASCII
 * (str.isprintable(), so no TAB), not starting with a character of NOISE_FIRST. */
static int plain_line(const char *s, Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t len = b - a;
    if (len < 1 || len > SHORT_LINE || noise_first((unsigned char)s[a])) return 0;
    unsigned char outside = 0; /* no early exit: the compiler vectorises the whole line */
    for (Py_ssize_t k = a; k < b; k++) outside |= (unsigned char)(s[k] - 0x20) > 0x5e;
    return !outside;
}

/* Characters that end a URL's host in _FAST's [^\s:;/?#|\[\]@\\] (a plain line has no other
 * whitespace than ' '). */
static const unsigned char ends_host[256] = {
    [' '] = 1, [':'] = 1, [';'] = 1, ['/'] = 1, ['?'] = 1, ['#'] = 1,
    ['|'] = 1, ['['] = 1, [']'] = 1, ['@'] = 1, ['\\'] = 1,
};

/* The placeholder logins of exposure.dumps.formats.placeholders.PLACEHOLDER_LOGINS that a fast
 * URL line can hold (printable ASCII without ' ', ':', '/' or '|'): the Python path rejects
 * them, so ulp_line leaves them to it. The tests check this list against the Python set. */
static const char *const placeholder_logins[] = {
    "unknown", "null", "nil", "none", "undefined", "empty", "blank", "n.a.", "-", "--", "---",
    "?", "??", "(null)", "<null>", "[null]", "(none)", "<none>", "[none]", "(empty)",
    "<empty>", "[empty]", "(unknown)", "[unknown]", "<unknown>", "not_saved", "[not_saved]",
    "notsaved", "no_login", "nologin", NULL,
};

/* Whether s[a:b] is one of placeholder_logins, ignoring ASCII case. */
static int placeholder_login(const char *s, Py_ssize_t a, Py_ssize_t b) {
    if (b - a > 11) return 0; /* longer than the longest placeholder */
    for (const char *const *p = placeholder_logins; *p != NULL; p++) {
        Py_ssize_t k = 0;
        while (a + k < b && (*p)[k] != '\0' &&
               (s[a + k] >= 'A' && s[a + k] <= 'Z' ? s[a + k] + 32 : s[a + k]) == (*p)[k])
            k++;
        if (a + k == b && (*p)[k] == '\0') return 1;
    }
    return 0;
}

static int lower_is(const char *s, Py_ssize_t k, char c) {
    return s[k] == c || s[k] == c - ('a' - 'A');
}

/* A plain line that exposure.dumps.formats.ulp._FAST matches, read as that regex reads it:
 *   (?i:https?)://([^\s:;/?#|\[\]@\\]+)(?:[/?#][^:\s|]*)?:(?!\d{1,5}:)([^:/\s|]+):[ \t]*(.*)
 * (no backtracking can change its reading: every part stops at a character the next part
 * needs), and whose login is no placeholder. Only ' ' is whitespace in a plain line. */
static int ulp_line(const char *s, Py_ssize_t a, Py_ssize_t b, FastRecord *r) {
    Py_ssize_t k = a;
    if (b - a < 10 || !lower_is(s, k, 'h') || !lower_is(s, k + 1, 't') ||
        !lower_is(s, k + 2, 't') || !lower_is(s, k + 3, 'p'))
        return 0;
    k += 4;
    if (lower_is(s, k, 's')) k++;
    if (s[k] != ':' || s[k + 1] != '/' || s[k + 2] != '/') return 0;
    Py_ssize_t host = k += 3;
    while (k < b && !ends_host[(unsigned char)s[k]]) k++;
    if (k == host) return 0;
    Py_ssize_t host_end = k;
    if (k < b && (s[k] == '/' || s[k] == '?' || s[k] == '#'))
        while (++k < b && s[k] != ':' && s[k] != ' ' && s[k] != '|') {}
    if (k >= b || s[k] != ':') return 0;
    Py_ssize_t login = ++k, digits = 0;
    while (login + digits < b && digits < 6 && s[login + digits] >= '0' && s[login + digits] <= '9')
        digits++;
    if (digits >= 1 && digits <= 5 && login + digits < b && s[login + digits] == ':') return 0;
    while (k < b && s[k] != ':' && s[k] != '/' && s[k] != ' ' && s[k] != '|') k++;
    if (k == login || k >= b || s[k] != ':' || placeholder_login(s, login, k)) return 0;
    Py_ssize_t pw = k + 1;
    while (pw < b && s[pw] == ' ') pw++; /* the separator's whitespace is no field's */
    *r = (FastRecord){0, (int32_t)login, (int32_t)k, (int32_t)pw, (int32_t)b,
                      (int32_t)host, (int32_t)host_end};
    return 1;
}

/* The first ':', ';' or '|' in s[k:b], or -1; s holds n bytes (b <= n), which the vector
 * loop may read past b (never past n): the scalar loop was half of split_combo's time. */
static Py_ssize_t find_delimiter(const char *s, Py_ssize_t k, Py_ssize_t b, Py_ssize_t n) {
#ifdef __SSE2__
    const __m128i colon = _mm_set1_epi8(':'), semicolon = _mm_set1_epi8(';');
    const __m128i bar = _mm_set1_epi8('|');
    for (; k < b && k + 16 <= n; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + k));
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(x, colon), _mm_cmpeq_epi8(x, semicolon));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(x, bar));
        unsigned int hits = (unsigned int)_mm_movemask_epi8(hit);
        if (hits) {
            k += __builtin_ctz(hits);
            return k < b ? k : -1;
        }
    }
#endif
    for (; k < b; k++)
        if (s[k] == ':' || s[k] == ';' || s[k] == '|') return k;
    return -1;
}

/* One plain line [a, b) of a combo list: 1 and the record's offsets when iter_combo reads it
 * as an e-mail first (a delimiter; the stripped login before it holds '@' and is at most
 * MAX_LOGIN_CHARS long; the spaces after the delimiter dropped; the password does not start
 * with what could be a second e-mail address, see below) or as a URL line that _FAST matches;
 * 0 otherwise. */
static int combo_line(const char *s, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n, FastRecord *r) {
    if (!plain_line(s, a, b)) return 0;
    Py_ssize_t delim = find_delimiter(s, a, b, n);
    if (delim < 0) return 0;
    Py_ssize_t ls = a, le = delim;
    while (ls < le && s[ls] == ' ') ls++;
    while (le > ls && s[le - 1] == ' ') le--;
    if (le - ls > MAX_LOGIN_CHARS || memchr(s + ls, '@', (size_t)(le - ls)) == NULL)
        /* iter_combo tries a URL line only when the text after the delimiter starts "//". */
        return delim + 2 < b && s[delim + 1] == '/' && s[delim + 2] == '/' && ulp_line(s, a, b, r);
    Py_ssize_t pw = delim + 1;
    while (pw < b && s[pw] == ' ') pw++;
    /* combo._second_identifier reads two logins when the password's first field is an e-mail
     * address, which needs an '@' and a '.' after it before the next delimiter: such lines
     * go to Python, which decides ("p@ss:w0rd" stays a password without that detour). */
    for (Py_ssize_t k = pw, at = 0; k < b && s[k] != ':' && s[k] != ';' && s[k] != '|'; k++) {
        if (s[k] == '@') at = 1;
        else if (s[k] == '.' && at) return 0;
    }
    *r = (FastRecord){0, (int32_t)ls, (int32_t)le, (int32_t)pw, (int32_t)b, 0, 0};
    return 1;
}

/* One plain line of a ULP list that parse_ulp_line reads with _FAST. */
static int url_line(const char *s, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n, FastRecord *r) {
    return plain_line(s, a, b) && ulp_line(s, a, b, r);
}

static const char *block_data(PyObject *data, Py_ssize_t *n) {
    char *s;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes");
        return NULL;
    }
    PyBytes_AsStringAndSize(data, &s, n);
    return s;
}

/* The range [start, end) of `data` a block of lines occupies (end < 0: to the end). A block
 * is a range of the chunk the decoder read: slicing it out would copy a megabyte per block. */
static const char *block_range(PyObject *data, Py_ssize_t start, Py_ssize_t end,
                               Py_ssize_t *first, Py_ssize_t *last) {
    Py_ssize_t n;
    const char *s = block_data(data, &n);
    if (s == NULL) return NULL;
    if (end < 0) end = n;
    if (start < 0 || start > end || end > n) {
        PyErr_SetString(PyExc_ValueError, "block range outside the data");
        return NULL;
    }
    if (n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "block too large");
        return NULL;
    }
    *first = start;
    *last = end;
    return s;
}

/* split_combo(data, start=0, end=-1) / split_ulp(...) -> (fast, slow)
 * data[start:end]: complete lines of UTF-8 text, each ending with "\n" or "\r\n"; a line
 * that is not printable ASCII is always slow.
 * fast: packed FastRecords; slow: packed int32 (line index, start, end) of every other line.
 * Offsets index `data`; line indexes count from `start`. */
static PyObject *split(PyObject *args, int (*read_line)(const char *, Py_ssize_t, Py_ssize_t,
                                                         Py_ssize_t, FastRecord *)) {
    PyObject *data;
    Py_ssize_t a = 0, n = -1;
    if (!PyArg_ParseTuple(args, "O|nn", &data, &a, &n)) return NULL;
    const char *s = block_range(data, a, n, &a, &n);
    if (s == NULL) return NULL;
    Buffer fast = {0}, slow = {0};
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    int32_t line = 0;
    while (a < n && !failed) {
        const char *nl = memchr(s + a, '\n', (size_t)(n - a));
        Py_ssize_t next = nl ? nl - s + 1 : n, b = nl ? nl - s : n;
        if (b > a && s[b - 1] == '\r') b--; /* "\r\n" ends a line; a lone "\r" is content */
        FastRecord r;
        if (read_line(s, a, b, n, &r)) {
            r.line = line;
            failed = buffer_add(&fast, &r, sizeof r);
        } else {
            int32_t item[3] = {line, (int32_t)a, (int32_t)b};
            failed = buffer_add(&slow, item, sizeof item);
        }
        line++;
        a = next;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyMem_RawFree(fast.data);
        PyMem_RawFree(slow.data);
        return PyErr_NoMemory();
    }
    PyObject *f = buffer_to_bytes(&fast), *sl = buffer_to_bytes(&slow);
    if (f == NULL || sl == NULL) {
        Py_XDECREF(f);
        Py_XDECREF(sl);
        return NULL;
    }
    return Py_BuildValue("(NN)", f, sl);
}

static PyObject *split_combo(PyObject *module, PyObject *args) {
    return split(args, combo_line);
}

static PyObject *split_ulp(PyObject *module, PyObject *args) {
    return split(args, url_line);
}

/* scan_lines(data, start=0, end=-1) -> (lines, plain): the number of "\n" bytes in
 * data[start:end], and whether every byte there is ASCII but NUL (such a block is valid UTF-8
 * and needs no other check). One pass, in 4 KiB runs the compiler vectorises (bytes.count
 * compares a byte at a time). */
static PyObject *scan_lines(PyObject *module, PyObject *args) {
    PyObject *data;
    Py_ssize_t a = 0, n = -1;
    if (!PyArg_ParseTuple(args, "O|nn", &data, &a, &n)) return NULL;
    const char *s = block_range(data, a, n, &a, &n);
    if (s == NULL) return NULL;
    Py_ssize_t total = 0;
    unsigned char odd = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; a < n; a += 4096) {
        Py_ssize_t b = n - a < 4096 ? n - a : 4096;
        uint32_t run = 0;
        for (Py_ssize_t i = 0; i < b; i++) {
            unsigned char c = (unsigned char)s[a + i];
            run += c == '\n';
            odd |= (unsigned char)(c - 1) >= 0x7f; /* NUL (wraps to 0xff) or 0x80 and above */
        }
        total += run;
    }
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(nO)", total, odd ? Py_False : Py_True);
}

/* --- fingerprints ----------------------------------------------------------------------- */

#ifdef SHA_NI_CODE
/* A SHA-256 state as the SHA extensions hold it: words A, B, E, F and C, D, G, H. */
typedef struct {
    __m128i abef, cdgh;
} NiState;
#endif

typedef struct {
    SHA256_CTX inner, outer; /* states after the ipad / opad block: HMAC with a fixed key */
#ifdef SHA_NI_CODE
    NiState ni_inner, ni_outer; /* the same, for the SHA extensions */
#endif
} Hmac;

/* Whether match_combo hashes with the SHA extensions (set at import when the CPU has them;
 * tests switch it off to check the OpenSSL path too). */
static int use_sha_ni;

#ifdef SHA_NI_CODE
SHA_NI static NiState ni_state(const uint32_t h[8]);
#endif

static void hmac_init(Hmac *h, const unsigned char *key, size_t keylen) {
    unsigned char k[64] = {0}, pad[64];
    if (keylen > 64)
        SHA256(key, keylen, k);
    else
        memcpy(k, key, keylen);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    SHA256_Init(&h->inner);
    SHA256_Update(&h->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    SHA256_Init(&h->outer);
    SHA256_Update(&h->outer, pad, 64);
#ifdef SHA_NI_CODE
    if (use_sha_ni) {
        h->ni_inner = ni_state(h->inner.h);
        h->ni_outer = ni_state(h->outer.h);
    }
#endif
}


static void put_be64(unsigned char *out, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) out[i] = (unsigned char)v;
}

static void put_be32(unsigned char *out, uint32_t v) {
    for (int i = 3; i >= 0; i--, v >>= 8) out[i] = (unsigned char)v;
}

/* The last block of a message whose earlier blocks (`done` bytes) are already processed and
 * whose rest, `len` <= 55 bytes, is `msg`: data, 0x80, zeros, bit length. One compression
 * instead of Update + Final: the common login and password fit in it. */
static void last_block(unsigned char block[64], const unsigned char *msg, size_t len,
                       size_t done) {
    memcpy(block, msg, len);
    block[len] = 0x80;
    memset(block + len + 1, 0, 55 - len);
    put_be64(block + 56, (uint64_t)(done + len) * 8);
}

/* The first 8 bytes, big-endian, of HMAC-SHA256(key, msg): the enrolled index's prefix. */
static uint64_t hmac_prefix(const Hmac *h, const unsigned char *msg, size_t len) {
    unsigned char inner[SHA256_DIGEST_LENGTH], block[64];
    SHA256_CTX c = h->inner;
    if (len <= 55) {
        last_block(block, msg, len, 64);
        SHA256_Transform(&c, block);
        for (int i = 0; i < 8; i++) put_be32(inner + 4 * i, c.h[i]);
    } else {
        SHA256_Update(&c, msg, len);
        SHA256_Final(inner, &c);
    }
    c = h->outer;
    last_block(block, inner, sizeof inner, 64);
    SHA256_Transform(&c, block);
    return ((uint64_t)c.h[0] << 32) | c.h[1];
}

#ifdef SHA_NI_CODE
/* --- SHA extensions ---------------------------------------------------------------------
 * OpenSSL hashes one block per call, and the rounds of a SHA-256 compression are one chain
 * of dependent instructions: the core's SHA unit waits on each result. Two independent
 * HMACs interleaved here keep it busy: 69 ns per HMAC-SHA256 against OpenSSL's 90
 * (measured). This is the compression as the SHA extensions define it (FIPS 180-4 rounds in
 * sha256rnds2, the message schedule in sha256msg1/2); tests check it against hashlib on
 * every message length one block holds. */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

SHA_NI static NiState ni_state(const uint32_t h[8]) {
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);
    return (NiState){_mm_alignr_epi8(dcba, hgfe, 8), _mm_blend_epi16(hgfe, dcba, 0xF0)};
}

/* A state's words H0-H3 and H4-H7 (a digest's words, in order). */
SHA_NI static void ni_words(NiState s, __m128i *h0123, __m128i *h4567) {
    __m128i feba = _mm_shuffle_epi32(s.abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
    *h0123 = _mm_blend_epi16(feba, dchg, 0xF0);
    *h4567 = _mm_alignr_epi8(dchg, feba, 8);
}

/* The last blocks (see last_block) of two messages as four vectors each, the bytes of every
 * 16 reordered by `order`: SHA-256 takes big-endian words, SHA-1's instructions the 16 bytes
 * reversed. */
SHA_NI static void last_blocks2(const unsigned char *m1, size_t len1, const unsigned char *m2,
                                size_t len2, size_t done, __m128i order, __m128i w[4],
                                __m128i v[4]) {
    unsigned char b1[64], b2[64];
    last_block(b1, m1, len1, done);
    last_block(b2, m2, len2, done);
    for (int i = 0; i < 4; i++) {
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b1 + 16 * i)), order);
        v[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b2 + 16 * i)), order);
    }
}

/* One compression each of two states, w and v the blocks' 16 message words (four per
 * vector), the instructions of the two interleaved. */
SHA_NI static void ni_compress2(NiState *s, NiState *t, __m128i w[4], __m128i v[4]) {
    __m128i a = s->abef, c = s->cdgh, b = t->abef, d = t->cdgh;
    for (int i = 0; i < 16; i++) {
        if (i >= 4) { /* W[t] for the next four rounds, from W[t-16..t-1] */
            __m128i wi = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
            __m128i vi = _mm_sha256msg1_epu32(v[i & 3], v[(i + 1) & 3]);
            wi = _mm_add_epi32(wi, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
            vi = _mm_add_epi32(vi, _mm_alignr_epi8(v[(i + 3) & 3], v[(i + 2) & 3], 4));
            w[i & 3] = _mm_sha256msg2_epu32(wi, w[(i + 3) & 3]);
            v[i & 3] = _mm_sha256msg2_epu32(vi, v[(i + 3) & 3]);
        }
        __m128i k = _mm_loadu_si128((const __m128i *)&K256[4 * i]);
        __m128i wk = _mm_add_epi32(w[i & 3], k), vk = _mm_add_epi32(v[i & 3], k);
        c = _mm_sha256rnds2_epu32(c, a, wk);
        d = _mm_sha256rnds2_epu32(d, b, vk);
        a = _mm_sha256rnds2_epu32(a, c, _mm_shuffle_epi32(wk, 0x0E));
        b = _mm_sha256rnds2_epu32(b, d, _mm_shuffle_epi32(vk, 0x0E));
    }
    *s = (NiState){_mm_add_epi32(a, s->abef), _mm_add_epi32(c, s->cdgh)};
    *t = (NiState){_mm_add_epi32(b, t->abef), _mm_add_epi32(d, t->cdgh)};
}

/* hmac_prefix of two messages of at most 55 bytes each, computed together. */
SHA_NI static void hmac_prefix2(const Hmac *h, const unsigned char *m1, size_t len1,
                                const unsigned char *m2, size_t len2, uint64_t out[2]) {
    const __m128i big_endian = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i w[4], v[4];
    last_blocks2(m1, len1, m2, len2, 64, big_endian, w, v);
    NiState s = h->ni_inner, t = h->ni_inner;
    ni_compress2(&s, &t, w, v);
    /* The outer message: the inner digest (its words as they are), 0x80, zeros, and its
     * length in bits (64 bytes of key block + 32). */
    ni_words(s, &w[0], &w[1]);
    ni_words(t, &v[0], &v[1]);
    w[2] = v[2] = _mm_set_epi32(0, 0, 0, (int)0x80000000u);
    w[3] = v[3] = _mm_set_epi32((64 + 32) * 8, 0, 0, 0);
    s = t = h->ni_outer;
    ni_compress2(&s, &t, w, v);
    ni_words(s, &w[0], &w[1]);
    ni_words(t, &v[0], &v[1]);
    out[0] = ((uint64_t)(uint32_t)_mm_extract_epi32(w[0], 0) << 32) |
             (uint32_t)_mm_extract_epi32(w[0], 1);
    out[1] = ((uint64_t)(uint32_t)_mm_extract_epi32(v[0], 0) << 32) |
             (uint32_t)_mm_extract_epi32(v[0], 1);
}

/* Rounds 4i to 4i+3 of two SHA-1 computations (f: the rounds' function, 0 to 3): the message
 * words W[4i..4i+3] from the sixteen before (sha1msg1/2), then E for these rounds from A four
 * rounds back (sha1nexte), then the rounds (sha1rnds4). Same interleaving, same reason as
 * the SHA-256 code above: 29 ns per password against OpenSSL's 40 (measured). */
#define SHA1_ROUNDS(i, f)                                                                   \
    do {                                                                                   \
        if (i >= 4) {                                                                      \
            w[i & 3] = _mm_sha1msg2_epu32(                                                 \
                _mm_xor_si128(_mm_sha1msg1_epu32(w[i & 3], w[(i + 1) & 3]), w[(i + 2) & 3]), \
                w[(i + 3) & 3]);                                                           \
            v[i & 3] = _mm_sha1msg2_epu32(                                                 \
                _mm_xor_si128(_mm_sha1msg1_epu32(v[i & 3], v[(i + 1) & 3]), v[(i + 2) & 3]), \
                v[(i + 3) & 3]);                                                           \
        }                                                                                  \
        __m128i e1 = i == 0 ? _mm_add_epi32(e0, w[0]) : _mm_sha1nexte_epu32(pa, w[i & 3]);  \
        __m128i e2 = i == 0 ? _mm_add_epi32(e0, v[0]) : _mm_sha1nexte_epu32(pb, v[i & 3]);  \
        pa = a;                                                                            \
        pb = b;                                                                            \
        a = _mm_sha1rnds4_epu32(a, e1, f);                                                 \
        b = _mm_sha1rnds4_epu32(b, e2, f);                                                 \
    } while (0)

/* password_sha1 of two passwords of at most 55 bytes each, computed together. */
SHA_NI static void sha1_pair(const unsigned char *m1, size_t len1, const unsigned char *m2,
                             size_t len2, unsigned char out1[20], unsigned char out2[20]) {
    const __m128i reverse = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    const __m128i abcd0 = _mm_set_epi32(0x67452301, (int)0xefcdab89, (int)0x98badcfe, 0x10325476);
    const __m128i e0 = _mm_set_epi32((int)0xc3d2e1f0, 0, 0, 0);
    __m128i w[4], v[4];
    last_blocks2(m1, len1, m2, len2, 0, reverse, w, v);
    __m128i a = abcd0, b = abcd0, pa = abcd0, pb = abcd0;
    SHA1_ROUNDS(0, 0); SHA1_ROUNDS(1, 0); SHA1_ROUNDS(2, 0); SHA1_ROUNDS(3, 0); SHA1_ROUNDS(4, 0);
    SHA1_ROUNDS(5, 1); SHA1_ROUNDS(6, 1); SHA1_ROUNDS(7, 1); SHA1_ROUNDS(8, 1); SHA1_ROUNDS(9, 1);
    SHA1_ROUNDS(10, 2); SHA1_ROUNDS(11, 2); SHA1_ROUNDS(12, 2); SHA1_ROUNDS(13, 2); SHA1_ROUNDS(14, 2);
    SHA1_ROUNDS(15, 3); SHA1_ROUNDS(16, 3); SHA1_ROUNDS(17, 3); SHA1_ROUNDS(18, 3); SHA1_ROUNDS(19, 3);
    __m128i ea = _mm_sha1nexte_epu32(pa, e0), eb = _mm_sha1nexte_epu32(pb, e0);
    a = _mm_add_epi32(a, abcd0);
    b = _mm_add_epi32(b, abcd0);
    /* The digest: A, B, C, D (lanes 3 to 0), then E (lane 3), each word big-endian. */
    _mm_storeu_si128((__m128i *)out1, _mm_shuffle_epi8(a, reverse));
    _mm_storeu_si128((__m128i *)out2, _mm_shuffle_epi8(b, reverse));
    put_be32(out1 + 16, (uint32_t)_mm_extract_epi32(ea, 3));
    put_be32(out2 + 16, (uint32_t)_mm_extract_epi32(eb, 3));
}

static int cpu_has_sha_ni(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 29)) != 0; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}
#endif

/* Message texts to fingerprint: "email\0" and an address (MAX_EMAIL), or a Gmail variant; 16
 * bytes to spare for login_messages' last 16-byte store. */
typedef struct {
    unsigned char text[6 + MAX_EMAIL + 16];
    size_t len;
} Message;

/* hmac_prefix of each of `n` messages, two at a time where both fit one block. */
static void hmac_prefixes(const Hmac *h, const Message *m, int n, uint64_t *out) {
    int i = 0;
#ifdef SHA_NI_CODE
    if (use_sha_ni)
        for (; i + 1 < n && m[i].len <= 55 && m[i + 1].len <= 55; i += 2)
            hmac_prefix2(h, m[i].text, m[i].len, m[i + 1].text, m[i + 1].len, out + i);
#endif
    for (; i < n; i++) out[i] = hmac_prefix(h, m[i].text, m[i].len);
}

/* SHA-1 of a password, as exposure.domain.fingerprints.password_sha1 (raw digest). `initial`: a context
 * SHA1_Init set up once (copying it is cheaper than a call per password). */
static void password_sha1(const SHA_CTX *initial, const unsigned char *pw, size_t len,
                          unsigned char out[20]) {
    if (len > 55) {
        SHA1(pw, len, out);
        return;
    }
    SHA_CTX c = *initial;
    unsigned char block[64];
    last_block(block, pw, len, 0);
    SHA1_Transform(&c, block);
    put_be32(out, c.h0);
    put_be32(out + 4, c.h1);
    put_be32(out + 8, c.h2);
    put_be32(out + 12, c.h3);
    put_be32(out + 16, c.h4);
}

/* password_sha1 of each of `n` records' passwords, two at a time where both fit one block. */
static void password_digests(const SHA_CTX *initial, const char *s, const FastRecord **r, int n,
                             unsigned char (*out)[SHA_DIGEST_LENGTH]) {
    int i = 0;
#ifdef SHA_NI_CODE
    if (use_sha_ni)
        for (; i + 1 < n && r[i]->pw_end - r[i]->pw_start <= 55 &&
               r[i + 1]->pw_end - r[i + 1]->pw_start <= 55;
             i += 2)
            sha1_pair((const unsigned char *)s + r[i]->pw_start,
                      (size_t)(r[i]->pw_end - r[i]->pw_start),
                      (const unsigned char *)s + r[i + 1]->pw_start,
                      (size_t)(r[i + 1]->pw_end - r[i + 1]->pw_start), out[i], out[i + 1]);
#endif
    for (; i < n; i++)
        password_sha1(initial, (const unsigned char *)s + r[i]->pw_start,
                      (size_t)(r[i]->pw_end - r[i]->pw_start), out[i]);
}

/* The enrolled index: sorted 64-bit prefixes and, for each value of their top `bits` bits,
 * the position of the first prefix with that value or more (EnrolledIndex.lookup_table). The
 * prefixes are uniform (HMAC output), so a bucket holds about one: two memory reads per probe
 * where a binary search over ten million prefixes takes twenty-four. */
typedef struct {
    const uint64_t *keys;
    Py_ssize_t size;
    const uint32_t *starts;
    int shift;
} Index;

static int in_index(const Index *ix, uint64_t key) {
    uint64_t bucket = key >> ix->shift;
    Py_ssize_t hi = ix->starts[bucket + 1];
    if (hi > ix->size) hi = ix->size; /* never trust a table to stay inside the keys */
    for (Py_ssize_t k = ix->starts[bucket]; k < hi; k++)
        if (ix->keys[k] >= key) return ix->keys[k] == key;
    return 0;
}

/* A domain that idna.encode(uts46=True) returns unchanged and that _domain_to_ascii keeps:
 * lower-case LDH labels, none empty or over 63, no leading or trailing '-', no '--' in the
 * 3rd and 4th positions (which is also every 'xn--' label), at least one dot, no root dot.
 * Anything else (IDN, underscores, trailing dot, ...) is left to Python. */
static int plain_domain(const char *d, Py_ssize_t len) {
    if (len < 3 || len > MAX_DOMAIN) return 0;
    Py_ssize_t label = 0, dots = 0;
    for (Py_ssize_t k = 0; k <= len; k++) {
        char c = k < len ? d[k] : '.';
        if (c == '.') {
            if (label == 0 || label > MAX_LABEL || d[k - 1] == '-') return 0;
            if (label >= 4 && d[k - label + 2] == '-' && d[k - label + 3] == '-') return 0;
            dots += k < len;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (label == 0 && c == '-') return 0;
            label++;
        } else {
            return 0;
        }
    }
    return dots > 0;
}

/* The messages whose HMACs are the index prefixes of a login that reads as exactly one plain
 * e-mail address, as exposure.domain.identity._email computes its keys: the strict key and, for
 * consumer Gmail, the variant key. Returns how many (1 or 2), or 0 when the Python path must
 * read the login (a space, no or two '@', a domain only IDNA can judge, too long). */
static int login_messages(const char *s, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n,
                          Message m[2]) {
    Py_ssize_t len = b - a;
    if (len > MAX_EMAIL) return 0; /* too long for an e-mail key: Python rejects it */
    memcpy(m[0].text, "email", 6); /* the kind, then NUL: "email\0" */
    unsigned char *e = m[0].text + 6;
    Py_ssize_t at = -1, k = 0; /* the last '@', and how many there are */
    int ats = 0;
#ifdef __SSE2__
    /* Lower-cased and checked 16 bytes at a time while they lie inside the text (byte by
     * byte, this was a quarter of match_combo's own time). Bytes past the login are copied
     * too, into the message's spare room, and left out of the checks. */
    for (; k < len && a + k + 16 <= n; k += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + a + k));
        __m128i from_a = _mm_sub_epi8(v, _mm_set1_epi8('A'));
        __m128i upper = _mm_cmpeq_epi8(_mm_min_epu8(from_a, _mm_set1_epi8(25)), from_a);
        v = _mm_add_epi8(v, _mm_and_si128(upper, _mm_set1_epi8('a' - 'A')));
        _mm_storeu_si128((__m128i *)(e + k), v);
        unsigned live = len - k >= 16 ? 0xFFFFu : (1u << (len - k)) - 1;
        if ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' '))) & live)
            return 0; /* not _is_clean(local), or a bad domain */
        unsigned here = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('@'))) & live;
        if (here) {
            ats += __builtin_popcount(here);
            at = k + 31 - __builtin_clz(here);
        }
    }
    if (k > len) k = len;
#endif
    for (; k < len; k++) {
        unsigned char c = (unsigned char)s[a + k];
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c == ' ') return 0; /* not _is_clean(local), or a bad domain */
        if (c == '@') at = k, ats++;
        e[k] = c;
    }
    if (at <= 0 || ats > 1) return 0; /* no local part, or two '@': Python rejects it */
    const char *domain = (const char *)e + at + 1;
    Py_ssize_t dlen = len - at - 1;
    if (!plain_domain(domain, dlen)) return 0;
    m[0].len = (size_t)(6 + len);
    if ((dlen == 9 && memcmp(domain, "gmail.com", 9) == 0) ||
        (dlen == 14 && memcmp(domain, "googlemail.com", 14) == 0)) {
        /* Variant: local part up to the first '+', dots removed, at gmail.com. */
        unsigned char *variant = m[1].text;
        memcpy(variant, m[0].text, 6);
        Py_ssize_t v = 6;
        for (Py_ssize_t i = 0; i < at && e[i] != '+'; i++)
            if (e[i] != '.') variant[v++] = e[i];
        if (v > 6) {
            memcpy(variant + v, "@gmail.com", 10);
            m[1].len = (size_t)(v + 10);
            return 2;
        }
    }
    return 1;
}

static int is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True unless the password surely is no hash for exposure.passwords.verifier.looks_like_hash: every
 * pattern it knows but bare hex starts with '*' or '{' or holds a '$'; bare hex digests have
 * the lengths below. Anything that might be one is left to Python. */
static int password_needs_python(const char *s, Py_ssize_t a, Py_ssize_t b) {
    while (a < b && s[a] == ' ') a++;
    while (b > a && s[b - 1] == ' ') b--;
    Py_ssize_t len = b - a;
    if (len == 0) return 0;
    if (s[a] == '*' || s[a] == '{' || memchr(s + a, '$', (size_t)len) != NULL) return 1;
    if (len == 32 || len == 40 || len == 56 || len == 64 || len == 96 || len == 128) {
        for (Py_ssize_t k = a; k < b; k++)
            if (!is_hex((unsigned char)s[k])) return 0;
        return 1;
    }
    return 0;
}

/* match_combo(data, fast, pepper, keys, starts, bits, feed_corpus) -> (python, digests)
 * python: packed int32 positions (into `fast`) of the records the Python path must handle;
 * digests: the 20-byte SHA-1 of each other record's password, when it has one and
 * `feed_corpus` is true (a record without a password adds nothing). `keys`, `starts`, `bits`:
 * the enrolled index (see Index). */
static PyObject *match_combo(PyObject *module, PyObject *args) {
    PyObject *text;
    Py_buffer fast, pepper, index, starts;
    int feed_corpus, bits;
    if (!PyArg_ParseTuple(args, "Sy*y*y*y*ip", &text, &fast, &pepper, &index, &starts, &bits,
                          &feed_corpus))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n;
    const char *s = block_data(text, &n);
    if (s == NULL) goto done;
    if (fast.len % sizeof(FastRecord) || index.len % sizeof(uint64_t) || bits < 1 ||
        bits > 32 || starts.len != (Py_ssize_t)((((size_t)1 << bits) + 1) * 4)) {
        PyErr_SetString(PyExc_ValueError, "malformed record or index buffer");
        goto done;
    }
    const FastRecord *records = fast.buf;
    Py_ssize_t count = fast.len / (Py_ssize_t)sizeof(FastRecord);
    for (Py_ssize_t i = 0; i < count; i++) {
        const FastRecord *r = &records[i];
        if (r->login_start < 0 || r->login_end > n || r->login_start > r->login_end ||
            r->pw_start < 0 || r->pw_end > n || r->pw_start > r->pw_end) {
            PyErr_SetString(PyExc_ValueError, "record offsets outside the text");
            goto done;
        }
    }
    Buffer python_positions = {0}, digests = {0};
    int failed = 0;
    Hmac h;
    hmac_init(&h, pepper.buf, (size_t)pepper.len);
    SHA_CTX sha1_initial;
    SHA1_Init(&sha1_initial);
    Index ix = {index.buf, index.len / (Py_ssize_t)sizeof(uint64_t), starts.buf, 64 - bits};
    Py_BEGIN_ALLOW_THREADS
    /* Records go in groups: every key of a group is hashed (two at a time) and its bucket
     * fetched ahead (prefetch) before any is compared, so the index's cache misses overlap;
     * then the passwords of the records settled here are hashed, two at a time too. */
    for (Py_ssize_t first = 0; first < count && !failed; first += GROUP) {
        Py_ssize_t m = count - first < GROUP ? count - first : GROUP;
        Message messages[2 * GROUP];
        uint64_t prefixes[2 * GROUP];
        int nkeys[GROUP], keys = 0;
        for (Py_ssize_t j = 0; j < m; j++) {
            const FastRecord *r = &records[first + j];
            keys += nkeys[j] = login_messages(s, r->login_start, r->login_end, n, &messages[keys]);
        }
        hmac_prefixes(&h, messages, keys, prefixes);
        for (int i = 0; i < keys; i++) __builtin_prefetch(&ix.starts[prefixes[i] >> ix.shift]);
        for (int i = 0; i < keys; i++)
            __builtin_prefetch(&ix.keys[ix.starts[prefixes[i] >> ix.shift]]);
        const FastRecord *hashed[GROUP]; /* the settled records with a password to hash */
        int settled = 0;
        keys = 0;
        for (Py_ssize_t j = 0; j < m && !failed; j++) {
            const FastRecord *r = &records[first + j];
            int python = nkeys[j] == 0 || password_needs_python(s, r->pw_start, r->pw_end);
            for (int i = 0; i < nkeys[j]; i++)
                python = python || in_index(&ix, prefixes[keys + i]);
            keys += nkeys[j];
            if (python) {
                int32_t position = (int32_t)(first + j);
                failed = buffer_add(&python_positions, &position, sizeof position);
            } else if (feed_corpus && r->pw_end > r->pw_start) {
                hashed[settled++] = r;
            }
        }
        unsigned char d[GROUP][SHA_DIGEST_LENGTH];
        password_digests(&sha1_initial, s, hashed, settled, d);
        for (int i = 0; i < settled && !failed; i++)
            failed = buffer_add(&digests, d[i], SHA_DIGEST_LENGTH);
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyMem_RawFree(python_positions.data);
        PyMem_RawFree(digests.data);
        PyErr_NoMemory();
        goto done;
    }
    PyObject *p = buffer_to_bytes(&python_positions), *d = buffer_to_bytes(&digests);
    if (p != NULL && d != NULL)
        result = Py_BuildValue("(NN)", p, d);
    else {
        Py_XDECREF(p);
        Py_XDECREF(d);
    }
done:
    PyBuffer_Release(&fast);
    PyBuffer_Release(&pepper);
    PyBuffer_Release(&index);
    PyBuffer_Release(&starts);
    return result;
}

/* set_sha_extensions(on) -> whether match_combo hashed with the CPU's SHA extensions until
 * now. They are used from import on when the CPU has them; on=False falls back to OpenSSL
 * (tests check both paths), on=True where the CPU lacks them changes nothing. Call it only
 * while nothing is being matched. */
static PyObject *set_sha_extensions(PyObject *module, PyObject *on) {
    int wanted = PyObject_IsTrue(on);
    if (wanted < 0) return NULL;
    int before = use_sha_ni;
#ifdef SHA_NI_CODE
    use_sha_ni = wanted && cpu_has_sha_ni();
#endif
    return PyBool_FromLong(before);
}

static PyMethodDef methods[] = {
    {"split_combo", split_combo, METH_VARARGS, "Split combo-list lines into fast records and the rest."},
    {"split_ulp", split_ulp, METH_VARARGS, "Split URL:login:password lines into fast records and the rest."},
    {"match_combo", match_combo, METH_VARARGS, "Fingerprint fast records; return Python's share."},
    {"scan_lines", scan_lines, METH_VARARGS, "Count a block's newlines; tell whether it is ASCII without NUL."},
    {"set_sha_extensions", set_sha_extensions, METH_O, "Hash with the CPU's SHA extensions or not."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "exposure.dumps._fastscan",
    .m_doc = "Native fast path for e-mail combo lines.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fastscan(void) {
#ifdef SHA_NI_CODE
    use_sha_ni = cpu_has_sha_ni();
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "RECORD_BYTES", sizeof(FastRecord)) < 0 ||
        PyModule_AddIntConstant(m, "SHORT_LINE", SHORT_LINE) < 0 ||
        PyModule_AddIntConstant(m, "MAX_LOGIN_CHARS", MAX_LOGIN_CHARS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_EMAIL", MAX_EMAIL) < 0 ||
        PyModule_AddObjectRef(m, "SHA_EXTENSIONS", use_sha_ni ? Py_True : Py_False) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_ssize_t count = 0;
    while (placeholder_logins[count] != NULL) count++;
    PyObject *placeholders = PyTuple_New(count);
    for (Py_ssize_t i = 0; placeholders != NULL && i < count; i++) {
        PyObject *word = PyUnicode_FromString(placeholder_logins[i]);
        if (word == NULL) Py_CLEAR(placeholders);
        else PyTuple_SET_ITEM(placeholders, i, word);
    }
    if (placeholders == NULL || PyModule_AddObjectRef(m, "PLACEHOLDER_LOGINS", placeholders) < 0) {
        Py_XDECREF(placeholders);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(placeholders);
    return m;
}
