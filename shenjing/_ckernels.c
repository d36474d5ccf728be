/* shenjing's compiled kernels: the places where a profile shows NumPy cannot get there
 * (benchmarks/RESULTS.md, issue 12). Plain C on float32 arrays, called through ctypes from
 * shenjing/compiled.py, which documents each function's Python twin and layout. Built at
 * install as an optional extension; without it shenjing runs its NumPy kernels.
 *
 * Every loop's innermost index runs over contiguous memory with selects, not branches, so
 * gcc vectorizes it. setup.py builds it for the installing machine (-march=native, as a
 * local source build of NumPy would), retrying without that flag if the compiler refuses.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <pthread.h>

typedef int64_t idx;

/* exp(x) in float32: x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-5 polynomial (our
 * least-squares fit, relative error 1.7e-7), 2^n from exponent bits. x is clamped to
 * [-87, 88], the normal range (NaN stays NaN), so the result is never inf, 0 or denormal.
 * n comes from adding 1.5 * 2^23 (which rounds to an integer in the low mantissa bits), not
 * from a float-to-int conversion: gcc does not vectorize that conversion after the clamp. */
static inline float exp32(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f;
    float t = x * 1.4426950408889634f + shifter;
    float n = t - shifter;
    float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    float p = 0.00833385f * r + 0.04189862f;
    p = p * r + 0.16666886f;
    p = p * r + 0.49999142f;
    p = 1.0f + r * (1.0f + r * p);
    int32_t bits; /* memcpy compiles to a bitcast */
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23; /* 2^n as a float's bits */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

static inline float sigmoid_neg(float a) { return 1.0f / (1.0f + exp32(a)); } /* a = -pre */

/* One LSTM step's gate math (see ops/rnn.py, whose feature-major layout this follows): g
 * (4H, N) holds -pre (-2 pre for the cell gate) without bias and gets the activations
 * i, f, g, o; bias (4H) is the scaled bias; c_t = f c_prev + i g; tc = tanh(c_t); h = o tc
 * (H, N), copied to z (H rows of N, row stride zs: the next step's rows of Z) unless z is
 * NULL, and transposed to out (N rows of H, row stride os: the layer's output rows of step
 * t). The strides of z and out are large powers of two, so the transposed tiles read the
 * contiguous h (rows 16 KB apart would share one L1 set and evict each other).
 * Two passes: every gate's sigmoid over the contiguous block first, then the cell update.
 * One loop doing both ran 40 % slower (175 vs 122 us at H = 256, N = 64): gcc vectorizes
 * the plain sigmoid loop without the per-row setup of eight streams. */
void lstm_forward_step(float *restrict g, const float *restrict bias, const float *restrict c_prev, float *restrict c,
                       float *restrict tc, float *restrict h, float *restrict z, idx zs, float *restrict out, idx os,
                       idx H, idx N) {
    for (idx r = 0; r < 4 * H; r++) {
        float *restrict gr = g + r * N;
        const float b = bias[r];
        for (idx n = 0; n < N; n++) gr[n] = sigmoid_neg(gr[n] + b);
    }
    for (idx r = 0; r < H; r++) {
        const float *restrict gi = g + r * N, *restrict gf = g + (H + r) * N, *restrict go = g + (3 * H + r) * N;
        float *restrict gg = g + (2 * H + r) * N;
        const float *restrict cp = c_prev + r * N;
        float *restrict cc = c + r * N, *restrict tt = tc + r * N, *restrict hh = h + r * N;
        for (idx n = 0; n < N; n++) {
            float gv = 2.0f * gg[n] - 1.0f;
            float cv = gf[n] * cp[n] + gi[n] * gv;
            float t = 2.0f * sigmoid_neg(-2.0f * cv) - 1.0f;
            gg[n] = gv; cc[n] = cv; tt[n] = t; hh[n] = go[n] * t;
        }
    }
    if (z)
        for (idx r = 0; r < H; r++) memcpy(z + r * zs, h + r * N, (size_t)N * sizeof(float));
    for (idx n0 = 0; n0 < N; n0 += 16) /* out = h.T in 16 x 16 tiles */
        for (idx r0 = 0; r0 < H; r0 += 16)
            for (idx n = n0; n < n0 + 16 && n < N; n++)
                for (idx r = r0; r < r0 + 16 && r < H; r++) out[n * os + r] = h[r * N + n];
}

/* Pre-activation gradients of one LSTM step into column block t of dG (4H, T, N). The
 * gradient reaching h_t is gout.T (gout: N rows of H, row stride gs, the output gradient's
 * rows of step t) + dh (H, N, from later steps; overwritten with the sum); dc (H, N), the
 * one reaching c_t from later steps, becomes the gradient reaching c_{t-1}. g (4H, N) holds
 * the step's activations. */
void lstm_backward_step(const float *restrict g, const float *restrict tc, const float *restrict c_prev,
                        const float *restrict gout, idx gs, float *restrict dh, float *restrict dc,
                        float *restrict dG, idx t, idx T, idx H, idx N) {
    for (idx r0 = 0; r0 < H; r0 += 16) /* dh += gout.T in 16 x 16 tiles, each gout row's */
        for (idx n0 = 0; n0 < N; n0 += 16) /* 16 floats read at once (its rows share L1 sets) */
            for (idx n = n0; n < n0 + 16 && n < N; n++)
                for (idx r = r0; r < r0 + 16 && r < H; r++) dh[r * N + n] += gout[n * gs + r];
    for (idx r = 0; r < H; r++) {
        const float *restrict gi = g + r * N, *restrict gf = g + (H + r) * N, *restrict gg = g + (2 * H + r) * N,
                    *restrict go = g + (3 * H + r) * N;
        const float *restrict tt = tc + r * N, *restrict cp = c_prev + r * N, *restrict d_h = dh + r * N;
        float *restrict dcr = dc + r * N;
        float *restrict di = dG + (r * T + t) * N, *restrict df = dG + ((H + r) * T + t) * N,
              *restrict dg = dG + ((2 * H + r) * T + t) * N, *restrict d_o = dG + ((3 * H + r) * T + t) * N;
        for (idx n = 0; n < N; n++) {
            float i = gi[n], f = gf[n], gv = gg[n], o = go[n], tv = tt[n], hv = d_h[n];
            float cv = dcr[n] + hv * o * (1.0f - tv * tv);
            di[n] = cv * gv * i * (1.0f - i);
            df[n] = cv * cp[n] * f * (1.0f - f);
            dg[n] = cv * i * (1.0f - gv * gv);
            d_o[n] = hv * tv * o * (1.0f - o);
            dcr[n] = cv * f;
        }
    }
}

#define NO_ROUTE 255

/* kh x kw max pooling with strides (sh, sw), no padding or dilation, of the (C, H, W, N)
 * frame x into out (C, oh, ow, N), and into code the scan-order index of each window's first
 * maximum (torch's tie rule). With relu, out = max(max, 0) and windows whose max is not
 * positive get NO_ROUTE; a NaN maximum routes nowhere too (as the NumPy kernel, whose routing
 * compares values for equality). win is scratch for N int32s (a uint8 select does not
 * vectorize). */
void max_pool_forward(const float *restrict x, idx C, idx H, idx W, idx N, idx kh, idx kw,
                             idx sh, idx sw, int relu, float *restrict out, uint8_t *restrict code, idx oh,
                             idx ow, int32_t *restrict win) {
    for (idx c = 0; c < C; c++)
        for (idx i = 0; i < oh; i++)
            for (idx j = 0; j < ow; j++) {
                float *restrict o = out + ((c * oh + i) * ow + j) * N;
                const float *restrict first = x + ((c * H + i * sh) * W + j * sw) * N;
                for (idx n = 0; n < N; n++) { o[n] = first[n]; win[n] = 0; }
                for (idx k = 1; k < kh * kw; k++) {
                    const float *restrict src = x + ((c * H + i * sh + k / kw) * W + j * sw + k % kw) * N;
                    const int32_t kk = (int32_t)k;
                    for (idx n = 0; n < N; n++) {
                        float v = src[n], m = o[n];
                        int better = (v > m) | ((v != v) & (m == m));
                        o[n] = better ? v : m;
                        win[n] = better ? kk : win[n];
                    }
                }
                uint8_t *restrict cd = code + ((c * oh + i) * ow + j) * N;
                for (idx n = 0; n < N; n++) {
                    float m = o[n];
                    int route = (m == m) & (!relu | (m > 0.0f));
                    cd[n] = (uint8_t)(route ? win[n] : NO_ROUTE);
                    o[n] = (relu & (m <= 0.0f)) ? 0.0f : m;
                }
            }
}

/* Route g (C, oh, ow, N) to each window's recorded maximum in dx (C, H, W, N). Windows that
 * tile (stride = kernel) write every element of dx once, zeros included; others (overlapping,
 * or with gaps) add into dx after one zeroing pass. */
void max_pool_backward(const float *restrict g, const uint8_t *restrict code, idx C, idx oh, idx ow,
                              idx N, idx kh, idx kw, idx sh, idx sw, float *restrict dx, idx H, idx W) {
    const int tiles = sh == kh && sw == kw;
    if (!tiles) memset(dx, 0, sizeof(float) * (size_t)(C * H * W * N));
    for (idx c = 0; c < C; c++) {
        for (idx i = 0; i < oh; i++) {
            for (idx j = 0; j < ow; j++) {
                const float *restrict gs = g + ((c * oh + i) * ow + j) * N;
                const uint8_t *restrict cd = code + ((c * oh + i) * ow + j) * N;
                for (idx k = 0; k < kh * kw; k++) {
                    float *restrict d = dx + ((c * H + i * sh + k / kw) * W + j * sw + k % kw) * N;
                    const uint8_t kk = (uint8_t)k;
                    if (tiles)
                        for (idx n = 0; n < N; n++) d[n] = cd[n] == kk ? gs[n] : 0.0f;
                    else
                        for (idx n = 0; n < N; n++) d[n] += cd[n] == kk ? gs[n] : 0.0f;
                }
            }
            if (tiles)  /* columns right of the last window, in this row band */
                for (idx r = i * kh; r < (i + 1) * kh; r++)
                    memset(dx + ((c * H + r) * W + ow * kw) * N, 0,
                           sizeof(float) * (size_t)((W - ow * kw) * N));
        }
        if (tiles)  /* rows below the last window */
            memset(dx + (c * H + oh * kh) * W * N, 0,
                   sizeof(float) * (size_t)((H - oh * kh) * W * N));
    }
}

/* dst (ni, nb, nj), C-contiguous, = src where src[i, b, j] is at i + b * sb + j * sj (its
 * first axis has unit stride: the batch-innermost frame of a conv output seen through a
 * transpose). NumPy copies such a transposed view at ~1 GB/s; 16 x 16 tiles keep both
 * sides in L1. */
void copy_unit_first(const float *restrict src, float *restrict dst, idx ni, idx nb, idx nj,
                     idx sb, idx sj) {
    for (idx b = 0; b < nb; b++)
        for (idx i0 = 0; i0 < ni; i0 += 16)
            for (idx j0 = 0; j0 < nj; j0 += 16) {
                idx i1 = i0 + 16 < ni ? i0 + 16 : ni, j1 = j0 + 16 < nj ? j0 + 16 : nj;
                for (idx i = i0; i < i1; i++) {
                    float *restrict d = dst + (i * nb + b) * nj;
                    const float *restrict s = src + i + b * sb;
                    for (idx j = j0; j < j1; j++) d[j] = s[j * sj];
                }
            }
}

/* Dropout's keep mask from NumPy's PCG64 stream, bit for bit: `state` holds the 128-bit
 * LCG state and increment as (state_hi, state_lo, inc_hi, inc_lo) and is advanced in place.
 * Each step is NumPy's (state = state * M + inc, then the XSL-RR output); a 64-bit word gives
 * two uint32s, low half first, as `random_raw(...).view(uint32)` does; keep = u >= threshold.
 * (n + 1) / 2 words are drawn, as the NumPy path draws. */
void dropout_keep_pcg64(uint64_t *state, uint8_t *restrict keep, idx n, uint32_t threshold) {
    typedef unsigned __int128 u128;
    const u128 mult = ((u128)2549297995355413924ULL << 64) | 4865540595714422341ULL;
    const u128 inc = ((u128)state[2] << 64) | state[3];
    u128 s = ((u128)state[0] << 64) | state[1];
    idx words = (n + 1) / 2;
    /* Four interleaved chains, each jumping four steps (s -> mult^4 s + inc (1 + mult +
     * mult^2 + mult^3)), so the four 128-bit multiplies of a round run in parallel. */
    const u128 m2 = mult * mult, m4 = m2 * m2;
    const u128 c4 = inc * (1 + mult + m2 + m2 * mult);
    u128 c0 = s * mult + inc, c1 = c0 * mult + inc, c2 = c1 * mult + inc, c3 = c2 * mult + inc;
    idx w0 = 0;
#define PCG_OUT(st) ({ uint64_t x_ = (uint64_t)((st) >> 64) ^ (uint64_t)(st); \
                       unsigned r_ = (unsigned)((st) >> 122); \
                       (x_ >> r_) | (x_ << ((64 - r_) & 63)); })
#define KEEP2(i, w) (keep[i] = (uint32_t)(w) >= threshold, \
                     keep[(i) + 1] = (uint32_t)((w) >> 32) >= threshold)
    for (; w0 + 4 <= n / 2; w0 += 4) { /* whole rounds: 8 mask bytes, no tail checks */
        uint64_t a0 = PCG_OUT(c0), a1 = PCG_OUT(c1), a2 = PCG_OUT(c2), a3 = PCG_OUT(c3);
        KEEP2(2 * w0, a0); KEEP2(2 * w0 + 2, a1); KEEP2(2 * w0 + 4, a2); KEEP2(2 * w0 + 6, a3);
        s = c3;
        c0 = c0 * m4 + c4; c1 = c1 * m4 + c4; c2 = c2 * m4 + c4; c3 = c3 * m4 + c4;
    }
    u128 rest[4] = {c0, c1, c2, c3};
    for (int j = 0; w0 + j < words; j++) { /* the last words, one at a time */
        uint64_t w = PCG_OUT(rest[j]);
        idx i = 2 * (w0 + j);
        keep[i] = (uint32_t)w >= threshold;
        if (i + 1 < n) keep[i + 1] = (uint32_t)(w >> 32) >= threshold;
        s = rest[j];
    }
#undef PCG_OUT
#undef KEEP2
    state[0] = (uint64_t)(s >> 64);
    state[1] = (uint64_t)s;
}

/* Inverted dropout in one pass: out = (x * keep) * scale, the NumPy path's two passes in
 * the same order (so -0 and NaN come out as there). */
void apply_keep(const float *restrict x, const uint8_t *restrict keep, float *restrict out,
                idx n, float scale) {
    for (idx i = 0; i < n; i++) out[i] = (x[i] * (float)keep[i]) * scale;
}

/* col2im for a stride-1, undilated convolution in the batch-innermost frame: dx (G*Cg, Hp,
 * Wp, N), the padded input's gradient, gets at (c, y, x) the sum over kernel offsets (i, j)
 * of dcols (G, kh, kw, Cg, oh, ow, N) at (g, i, j, cg, y - i, x - j) where that lies inside,
 * added in offset order from zero: the NumPy path's kh*kw slice-adds, the same bits, but
 * one pass that writes each element of dx once. */
void col2im_stride1(const float *restrict dcols, float *restrict dx, idx G, idx kh, idx kw,
                    idx Cg, idx oh, idx ow, idx N, idx Hp, idx Wp) {
    for (idx g = 0; g < G; g++)
        for (idx cg = 0; cg < Cg; cg++)
            for (idx y = 0; y < Hp; y++)
                for (idx x = 0; x < Wp; x++) {
                    float *restrict d = dx + (((g * Cg + cg) * Hp + y) * Wp + x) * N;
                    for (idx n = 0; n < N; n++) d[n] = 0.0f;
                    for (idx i = 0; i < kh; i++) {
                        idx r = y - i;
                        if (r < 0 || r >= oh) continue;
                        for (idx j = 0; j < kw; j++) {
                            idx q = x - j;
                            if (q < 0 || q >= ow) continue;
                            const float *restrict s =
                                dcols + (((((g * kh + i) * kw + j) * Cg + cg) * oh + r) * ow + q) * N;
                            for (idx n = 0; n < N; n++) d[n] += s[n];
                        }
                    }
                }
}

/* A NumPy memory handler that keeps freed blocks of 1 MB or more (up to cache_cap bytes in
 * all) and hands them to the next request of about their size, instead of returning them to
 * glibc, which unmaps or trims them after every training step, so the next step page-faults
 * the same memory in again (W7: 8-15 K faults a step, benchmarks/RESULTS.md). Everything
 * else goes to NumPy's default handler. The structs mirror numpy/ndarraytypes.h (handler
 * version 1); install_numpy_cache takes NumPy's C-API table, so no NumPy headers are needed
 * at build time. */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} np_allocator;

typedef struct {
    char name[127];
    uint8_t version;
    np_allocator allocator;
} np_handler;

#define CACHE_SLOTS 64
#define CACHE_MIN ((size_t)1 << 20)
static struct { void *ptr; size_t size; } cache[CACHE_SLOTS];
static size_t cache_bytes, cache_cap;
static np_allocator numpy_default;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static np_handler cache_handler;

/* The smallest cached block of size to size + size/8 bytes, taken out of the cache; else NULL. */
static void *cache_take(size_t size) {
    void *p = NULL;
    pthread_mutex_lock(&cache_lock);
    int best = -1;
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].ptr && cache[i].size >= size && cache[i].size - size <= size / 8 &&
            (best < 0 || cache[i].size < cache[best].size))
            best = i;
    if (best >= 0) {
        p = cache[best].ptr;
        cache_bytes -= cache[best].size;
        cache[best].ptr = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    return p;
}

static void *cache_malloc(void *ctx, size_t size) {
    (void)ctx;
    void *p = size >= CACHE_MIN ? cache_take(size) : NULL;
    return p ? p : numpy_default.malloc(numpy_default.ctx, size);
}

static void *cache_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx; /* fresh zero pages cost no more than zeroing a cached block */
    return numpy_default.calloc(numpy_default.ctx, nelem, elsize);
}

static void *cache_realloc(void *ctx, void *ptr, size_t new_size) {
    (void)ctx;
    return numpy_default.realloc(numpy_default.ctx, ptr, new_size);
}

/* size is what NumPy asked for; a block handed out from the cache may be up to 1/8 bigger,
 * so the cache records (and reuses) it as `size`, never more than it holds. */
static void cache_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (ptr && size >= CACHE_MIN) {
        pthread_mutex_lock(&cache_lock);
        if (cache_bytes + size <= cache_cap)
            for (int i = 0; i < CACHE_SLOTS; i++)
                if (!cache[i].ptr) {
                    cache[i].ptr = ptr;
                    cache[i].size = size;
                    cache_bytes += size;
                    pthread_mutex_unlock(&cache_lock);
                    return;
                }
        pthread_mutex_unlock(&cache_lock);
    }
    numpy_default.free(numpy_default.ctx, ptr, size);
}

static void cache_lock_all(void) { pthread_mutex_lock(&cache_lock); }
static void cache_unlock_all(void) { pthread_mutex_unlock(&cache_lock); }

/* Make the caching handler NumPy's handler in the calling thread's context (NumPy keeps the
 * handler in a context variable; every array remembers the handler that allocated it, so
 * arrays made before keep theirs). api: NumPy's C-API table (PyArray_API): slot 304 is
 * PyDataMem_SetHandler, 306 PyDataMem_DefaultHandler. Called with the GIL held. 0 on
 * success, -1 with a Python exception set. */
int install_numpy_cache(void **api, size_t cap) {
    PyObject *(*set_handler)(PyObject *) = (PyObject * (*)(PyObject *)) api[304];
    PyObject *default_capsule = *(PyObject **)api[306];
    np_handler *def = PyCapsule_GetPointer(default_capsule, "mem_handler");
    if (!def) return -1;
    if (def->version != 1) {
        PyErr_Format(PyExc_RuntimeError, "NumPy's memory handler has version %d, expected 1",
                     (int)def->version);
        return -1;
    }
    static int fork_safe = 0; /* a fork while another thread holds the lock must not leave */
    if (!fork_safe) {         /* the child's copy locked forever */
        pthread_atfork(cache_lock_all, cache_unlock_all, cache_unlock_all);
        fork_safe = 1;
    }
    pthread_mutex_lock(&cache_lock);
    numpy_default = def->allocator;
    cache_cap = cap;
    pthread_mutex_unlock(&cache_lock);
    strcpy(cache_handler.name, "shenjing_block_cache");
    cache_handler.version = 1;
    cache_handler.allocator = (np_allocator){NULL, cache_malloc, cache_calloc, cache_realloc, cache_free};
    PyObject *capsule = PyCapsule_New(&cache_handler, "mem_handler", NULL);
    if (!capsule) return -1;
    PyObject *old = set_handler(capsule); /* the context variable keeps its own reference */
    Py_DECREF(capsule);
    if (!old) return -1;
    Py_DECREF(old);
    return 0;
}

/* Return every cached block to NumPy's default handler. */
void release_numpy_cache(void) {
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].ptr) {
            numpy_default.free(numpy_default.ctx, cache[i].ptr, cache[i].size);
            cache[i].ptr = NULL;
        }
    cache_bytes = 0;
    pthread_mutex_unlock(&cache_lock);
}

/* Bytes the cache holds now (tests, diagnostics). */
size_t numpy_cache_bytes(void) {
    pthread_mutex_lock(&cache_lock);
    size_t n = cache_bytes;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

/* The optimizer steps below round as the NumPy kernels do (no fused multiply-adds), so both
 * paths give the same bits (tested), and the trajectories stay torch's. */
#pragma GCC optimize("fp-contract=off")

/* One Adam step over n elements in one pass (torch.optim.Adam's algorithm as written in
 * optim/adaptive.py's NumPy kernel, in the same operation order): decay multiplies p first
 * (AdamW; 1 otherwise); the gradient is negated when maximizing, plus l2 * p (L2 decay);
 * m = m + (g - m) w1; v = beta2 v + (w2 g) g; with vmax (amsgrad) the running max of v is
 * used; p += (m / (sqrt(v) + eps_scaled)) * neg_step. w1 = 1 - beta1 and w2 = 1 - beta2
 * come rounded from double, as NumPy rounds them. */
static inline void adam_element(float *restrict p, const float *restrict g, float *restrict m,
                                float *restrict v, float *restrict vmax, idx i, float w1,
                                float beta2, float w2, float decay, float l2, int maximize,
                                float eps_scaled, float neg_step) {
    float x = p[i] * decay;
    float gi = maximize ? -g[i] : g[i];
    gi = l2 != 0.0f ? x * l2 + gi : gi;
    float mi = m[i] + (gi - m[i]) * w1;
    float vi = v[i] * beta2 + (gi * w2) * gi;
    m[i] = mi;
    v[i] = vi;
    if (vmax) {
        vi = vmax[i] > vi ? vmax[i] : vi;
        vmax[i] = vi;
    }
    p[i] = x + (mi / (sqrtf(vi) + eps_scaled)) * neg_step;
}

void adam_step(float *restrict p, const float *restrict g, float *restrict m,
               float *restrict v, float *restrict vmax, idx n, float w1, float beta2, float w2,
               float decay, float l2, int maximize, float eps_scaled, float neg_step) {
    if (vmax)
        for (idx i = 0; i < n; i++)
            adam_element(p, g, m, v, vmax, i, w1, beta2, w2, decay, l2, maximize, eps_scaled,
                         neg_step);
    else
        for (idx i = 0; i < n; i++)
            adam_element(p, g, m, v, NULL, i, w1, beta2, w2, decay, l2, maximize, eps_scaled,
                         neg_step);
}

/* The gradient an SGD step uses: negated when maximizing, plus l2 * p. */
static inline float sgd_grad(const float *restrict p, const float *restrict g, idx i, float l2,
                             int maximize) {
    float gi = maximize ? -g[i] : g[i];
    return l2 != 0.0f ? p[i] * l2 + gi : gi;
}

/* One SGD step over n elements in one pass (optim/sgd.py's NumPy kernel, same operation
 * order): with buf (momentum), buf = gi on the first step, else buf * momentum + gi (gi *
 * keep when dampened, keep = 1 - dampening); the step is buf, or buf * momentum + gi
 * (Nesterov); p += step * neg_lr. One loop per case, so that loads and stores are
 * unconditional and gcc vectorizes each (with the branches inside: 2x slower, scalar). */
void sgd_step(float *restrict p, const float *restrict g, float *restrict buf, idx n, float neg_lr,
              float l2, int maximize, float momentum, float keep, int dampened, int nesterov,
              int first) {
    if (!buf) {
        for (idx i = 0; i < n; i++) p[i] = p[i] + sgd_grad(p, g, i, l2, maximize) * neg_lr;
        return;
    }
    if (first) {
        for (idx i = 0; i < n; i++) {
            float gi = sgd_grad(p, g, i, l2, maximize);
            buf[i] = gi;
            p[i] = p[i] + (nesterov ? gi * momentum + gi : gi) * neg_lr;
        }
        return;
    }
    for (idx i = 0; i < n; i++) {
        float gi = sgd_grad(p, g, i, l2, maximize);
        float b = buf[i] * momentum + (dampened ? gi * keep : gi);
        buf[i] = b;
        p[i] = p[i] + (nesterov ? b * momentum + gi : b) * neg_lr;
    }
}

/* A Python extension only so that pip builds it with the package; the functions above are
 * called through ctypes. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ckernels",
                                    "shenjing's compiled kernels (called through ctypes)", -1,
                                    NULL};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&module); }
