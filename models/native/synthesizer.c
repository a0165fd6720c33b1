/* The TextureSynthesizer's training forward and backward, fused: models/native_synthesizer.py builds and calls
 * this file, and documents it. What it computes is models/texture_synthesizer.py's MLP in float32 (input layer,
 * residual blocks h + act(W h + b), output layer) on a batch of texels; the tests compare the two
 * (tests/test_native_synthesizer.py). The batch goes through in tiles of TILE texels whose activations stay in
 * cache, and every layer's elementwise work is done on the tile its product just wrote, where PyTorch makes a pass
 * over the whole batch per operation. Products run on 16-float vectors (GCC's vector extensions: AVX-512 registers
 * where the CPU has them, pairs of AVX ones otherwise) with 4 rows' sums held in registers; in a bfloat16 fit, the
 * hidden layers' products (input layer and blocks, both ways) take AVX512-BF16's dot products of bfloat16 pairs with
 * float32 sums, as PyTorch's autocast does, and the rest stays float32. Plain C, no PyTorch headers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { TILE = 32, V = 16, MAX_VECTORS = 4, MAX_WIDTH = V * MAX_VECTORS, MAX_INPUTS = 160, MAX_BLOCKS = 8 };
enum { ACT_RELU = 0, ACT_SILU = 1 };
/* The batch's fixed split for the weights' gradient: each part sums its tiles in order, then the parts are added
 * in order. The same bits on any thread count. */
enum { PARTS = 16 };

typedef float vec __attribute__((vector_size(V * sizeof(float))));

static inline vec load(const float *p) {
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store(float *p, vec v) { memcpy(p, &v, sizeof v); }

/* e^x for x in [-87, 88], ~2 ulp: Cephes' expf, written branch-free (the nearest integer by adding and subtracting
 * 1.5 * 2^23, the power of two built from its bits) so that loops over it vectorize. */
static inline float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : x; /* not fminf / fmaxf: those keep the loop from vectorizing */
    x = x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* The activation of `z` into `a`, and for SiLU its sigmoid into `s` (the backward's derivative needs it). */
static inline void activate(const float *z, float *a, float *s, int64_t count, int32_t act) {
    if (act == ACT_RELU) {
        for (int64_t i = 0; i < count; i++) a[i] = z[i] > 0.0f ? z[i] : 0.0f;
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        float sig = 1.0f / (1.0f + exp_approx(-z[i]));
        s[i] = sig;
        a[i] = z[i] * sig;
    }
}

/* gz = g * act'(z), elementwise (gz may be g). */
static inline void times_derivative(float *gz, const float *g, const float *z, const float *s, int64_t count,
                                    int32_t act) {
    if (act == ACT_RELU) {
        for (int64_t i = 0; i < count; i++) gz[i] = z[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    for (int64_t i = 0; i < count; i++) gz[i] = g[i] * (s[i] * (1.0f + z[i] * (1.0f - s[i])));
}

/* out[r, :16 nv] (+)= x[r, :k] @ w[:k, :16 nv] for the tile's rows, nv <= MAX_VECTORS: w row-major with row stride
 * ldw, out with row stride ldo. Inlined with a constant `nv`, 4 rows' sums stay in registers. */
static inline __attribute__((always_inline)) void product_part(int rows, const float *x, int64_t ldx, int64_t k,
                                                          const float *w, int64_t ldw, float *out, int64_t ldo,
                                                          int nv, int accumulate) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        vec acc[4][MAX_VECTORS];
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < nv; v++) acc[q][v] = accumulate ? load(out + (r + q) * ldo + v * V) : (vec){0};
        for (int64_t i = 0; i < k; i++) {
            float a0 = x[(r + 0) * ldx + i], a1 = x[(r + 1) * ldx + i];
            float a2 = x[(r + 2) * ldx + i], a3 = x[(r + 3) * ldx + i];
            for (int v = 0; v < nv; v++) {
                vec wv = load(w + i * ldw + v * V);
                acc[0][v] += a0 * wv;
                acc[1][v] += a1 * wv;
                acc[2][v] += a2 * wv;
                acc[3][v] += a3 * wv;
            }
        }
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < nv; v++) store(out + (r + q) * ldo + v * V, acc[q][v]);
    }
    for (; r < rows; r++) {
        vec acc[MAX_VECTORS];
        for (int v = 0; v < nv; v++) acc[v] = accumulate ? load(out + r * ldo + v * V) : (vec){0};
        for (int64_t i = 0; i < k; i++)
            for (int v = 0; v < nv; v++) acc[v] += x[r * ldx + i] * load(w + i * ldw + v * V);
        for (int v = 0; v < nv; v++) store(out + r * ldo + v * V, acc[v]);
    }
}

/* product_part over any number of vectors: in parts of MAX_VECTORS, each with a constant count. */
static inline __attribute__((always_inline)) void product(int rows, const float *x, int64_t ldx, int64_t k,
                                                          const float *w, int64_t ldw, float *out, int64_t ldo,
                                                          int nv, int accumulate) {
    int v = 0;
    for (; v + MAX_VECTORS <= nv; v += MAX_VECTORS)
        product_part(rows, x, ldx, k, w + v * V, ldw, out + v * V, ldo, MAX_VECTORS, accumulate);
    switch (nv - v) {
    case 1: product_part(rows, x, ldx, k, w + v * V, ldw, out + v * V, ldo, 1, accumulate); break;
    case 2: product_part(rows, x, ldx, k, w + v * V, ldw, out + v * V, ldo, 2, accumulate); break;
    case 3: product_part(rows, x, ldx, k, w + v * V, ldw, out + v * V, ldo, 3, accumulate); break;
    default: break;
    }
}

/* gw[i, :16 nv] += sum over the tile's rows of x[r, i] * g[r, :16 nv], for i < k: a weight's gradient, laid out
 * (rows of x's columns, g's width). */
static inline __attribute__((always_inline)) void outer(int rows, const float *x, int64_t ldx, int64_t k,
                                                        const float *g, int64_t ldg, int nv, float *gw) {
    int64_t ldw = (int64_t)nv * V, i = 0;
    for (; i + 4 <= k; i += 4) {
        vec acc[4][MAX_VECTORS];
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < nv; v++) acc[q][v] = load(gw + (i + q) * ldw + v * V);
        for (int r = 0; r < rows; r++) {
            const float *xr = x + r * ldx + i;
            float x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3];
            for (int v = 0; v < nv; v++) {
                vec gv = load(g + r * ldg + v * V);
                acc[0][v] += x0 * gv;
                acc[1][v] += x1 * gv;
                acc[2][v] += x2 * gv;
                acc[3][v] += x3 * gv;
            }
        }
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < nv; v++) store(gw + (i + q) * ldw + v * V, acc[q][v]);
    }
    for (; i < k; i++) {
        vec acc[MAX_VECTORS];
        for (int v = 0; v < nv; v++) acc[v] = load(gw + i * ldw + v * V);
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < nv; v++) acc[v] += x[r * ldx + i] * load(g + r * ldg + v * V);
        for (int v = 0; v < nv; v++) store(gw + i * ldw + v * V, acc[v]);
    }
}

static inline int64_t padded(int64_t m) { return (m + V - 1) / V * V; }

/* bfloat16, rounded to nearest even as PyTorch rounds (NaN aside: training's values are finite). */
static inline uint16_t to_bf16(float f) {
    union {
        float f;
        uint32_t u;
    } b = {.f = f};
    return (uint16_t)((b.u + 0x7FFFu + ((b.u >> 16) & 1u)) >> 16);
}

/* The rows of a (k, m) matrix in pairs for the bfloat16 dot products: out[(i / 2, j, i % 2)] = a[i, j] (zero past
 * row k); lda is a's row stride. */
static void pack_pairs(const float *a, int64_t k, int64_t m, int64_t lda, uint16_t *out) {
    for (int64_t i2 = 0; i2 < (k + 1) / 2; i2++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t two = 0; two < 2; two++) {
                int64_t i = 2 * i2 + two;
                out[(i2 * m + j) * 2 + two] = i < k ? to_bf16(a[i * lda + j]) : 0;
            }
}

#if defined(__AVX512BF16__)
#include <immintrin.h>
enum { HAS_BF16 = 1 };

/* pack_pairs of the tile's activations, 16 columns at a time (m a whole number of vectors): two rows' floats
 * rounded to bfloat16 at once and interleaved. */
static inline void pack_pairs_tile(const float *a, int rows, int64_t m, int64_t lda, uint16_t *out) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int r = 0; r < rows; r += 2)
        for (int64_t j = 0; j < m; j += V) {
            __m512 lo = _mm512_loadu_ps(a + r * lda + j);
            __m512 hi = r + 1 < rows ? _mm512_loadu_ps(a + (r + 1) * lda + j) : _mm512_setzero_ps();
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* lo's 16 then hi's 16 */
            _mm512_storeu_si512(out + ((r / 2) * m + j) * 2, _mm512_permutexvar_epi16(interleave, both));
        }
}

/* Rows of x as bfloat16, k padded to even: xb[r, i]. */
static inline void rows_bf16(const float *x, int rows, int64_t k, int64_t ldx, uint16_t *xb) {
    int64_t kp = (k + 1) / 2 * 2;
    for (int r = 0; r < rows; r++) {
        int64_t i = 0;
        for (; i + V <= k; i += V) {
            __m256bh half = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + r * ldx + i));
            _mm256_storeu_si256((__m256i *)(xb + r * kp + i), (__m256i)half);
        }
        for (; i < kp; i++) xb[r * kp + i] = i < k ? to_bf16(x[r * ldx + i]) : 0;
    }
}

/* product_part in bfloat16 (AVX512-BF16's dot products of pairs, float32 sums): xb (rows, kp) from rows_bf16,
 * wp from pack_pairs with row stride ldw2 (2 m). */
static inline __attribute__((always_inline)) void product_bf16_part(int rows, const uint16_t *xb, int64_t kp,
                                                                    const uint16_t *wp, int64_t ldw2, float *out,
                                                                    int64_t ldo, int nv, int accumulate) {
    int r = 0;
    for (; r < rows; r += 4) {
        int q_n = rows - r < 4 ? rows - r : 4;
        __m512 acc[4][MAX_VECTORS];
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < nv; v++)
                acc[q][v] = accumulate && q < q_n ? _mm512_loadu_ps(out + (r + q) * ldo + v * V) : _mm512_setzero_ps();
        for (int64_t i2 = 0; i2 < kp / 2; i2++) {
            __m512bh a[4];
            for (int q = 0; q < 4; q++) {
                int32_t pair;
                memcpy(&pair, xb + (r + (q < q_n ? q : 0)) * kp + 2 * i2, sizeof pair);
                a[q] = (__m512bh)_mm512_set1_epi32(pair);
            }
            for (int v = 0; v < nv; v++) {
                __m512bh wv = (__m512bh)_mm512_loadu_si512(wp + i2 * ldw2 + v * 2 * V);
                for (int q = 0; q < 4; q++) acc[q][v] = _mm512_dpbf16_ps(acc[q][v], a[q], wv);
            }
        }
        for (int q = 0; q < q_n; q++)
            for (int v = 0; v < nv; v++) _mm512_storeu_ps(out + (r + q) * ldo + v * V, acc[q][v]);
    }
}

/* outer in bfloat16: gw[i, :16 nv] += sum over rows of x[r, i] g[r, :]; xq and gq from pack_pairs_tile, xq with
 * kq columns (k rounded up to vectors). */
static inline __attribute__((always_inline)) void outer_bf16(int64_t r2s, const uint16_t *xq, int64_t k, int64_t kq,
                                                             const uint16_t *gq, int nv, float *gw) {
    int64_t ldw = (int64_t)nv * V;
    for (int64_t i = 0; i < k; i += 4) {
        int q_n = k - i < 4 ? (int)(k - i) : 4;
        __m512 acc[4][MAX_VECTORS];
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < nv; v++)
                acc[q][v] = q < q_n ? _mm512_loadu_ps(gw + (i + q) * ldw + v * V) : _mm512_setzero_ps();
        for (int64_t r2 = 0; r2 < r2s; r2++) {
            __m512bh a[4];
            for (int q = 0; q < 4; q++) {
                int32_t pair;
                memcpy(&pair, xq + (r2 * kq + i + (q < q_n ? q : 0)) * 2, sizeof pair);
                a[q] = (__m512bh)_mm512_set1_epi32(pair);
            }
            for (int v = 0; v < nv; v++) {
                __m512bh gv = (__m512bh)_mm512_loadu_si512(gq + (r2 * ldw + v * V) * 2);
                for (int q = 0; q < 4; q++) acc[q][v] = _mm512_dpbf16_ps(acc[q][v], a[q], gv);
            }
        }
        for (int q = 0; q < q_n; q++)
            for (int v = 0; v < nv; v++) _mm512_storeu_ps(gw + (i + q) * ldw + v * V, acc[q][v]);
    }
}
#else
enum { HAS_BF16 = 0 };
#endif

/* Whether this build takes bfloat16 products (the CPU has AVX512-BF16). */
int ngtc_synthesize_bf16(void) { return HAS_BF16; }

typedef struct {
    int64_t n, features, rest, width, blocks, outputs;
    int32_t act, bf16; /* bf16: the hidden layers' products in bfloat16 (float32 sums), as PyTorch's autocast */
    const float *feat, *rest_in;      /* (n, features), (n, rest): the input layer's inputs, concatenated */
    const float *w_in, *b_in;         /* (width, inputs) as PyTorch stores them, (width) */
    const float *w_blocks, *b_blocks; /* (blocks, width, width), (blocks, width) */
    const float *w_out, *b_out;       /* (outputs, width), (outputs) */
} Net;

typedef struct { /* the weights as the products read them: (inputs, width) rows, outputs padded to vectors */
    float in_t[MAX_INPUTS * MAX_WIDTH];
    float blocks_t[MAX_BLOCKS][MAX_WIDTH * MAX_WIDTH];
    float out_t[MAX_WIDTH * MAX_WIDTH];  /* (width, padded outputs), zero past the outputs */
    float in_feat[MAX_WIDTH * MAX_INPUTS]; /* (width, padded features): w_in's feature columns, zero past them */
    /* the same in bfloat16 pairs (pack_pairs) where the products are; the blocks' own layout for the backward */
    uint16_t in_p[(MAX_INPUTS + 2) * MAX_WIDTH], in_feat_p[MAX_WIDTH * MAX_INPUTS];
    uint16_t blocks_tp[MAX_BLOCKS][MAX_WIDTH * MAX_WIDTH], blocks_p[MAX_BLOCKS][MAX_WIDTH * MAX_WIDTH];
} Weights;

typedef struct { /* a tile's activations: inputs, pre-activations z (in `saved`), sigmoids s, hidden states h */
    float x[TILE * MAX_INPUTS];
    float *z[MAX_BLOCKS + 1];
    float *s[MAX_BLOCKS + 1]; /* in `saved` too, after the z */
    float h[MAX_BLOCKS + 1][TILE * MAX_WIDTH];
    float a[TILE * MAX_WIDTH];
    float g[TILE * MAX_WIDTH];
    float gz[TILE * MAX_WIDTH];
    float o[TILE * MAX_INPUTS]; /* the output layer's (padded) or the features' gradient (padded) */
    uint16_t xb[TILE * (MAX_INPUTS + 2)], xq[TILE * (MAX_INPUTS + V)], gq[TILE * MAX_WIDTH]; /* bfloat16 operands */
} Tile;

typedef struct { /* one part's sums of the weights' gradient: w_in transposed (inputs, width), the rest as PyTorch */
    float w_in_t[MAX_INPUTS * MAX_WIDTH], b_in[MAX_WIDTH];
    float w_blocks[MAX_BLOCKS][MAX_WIDTH * MAX_WIDTH], b_blocks[MAX_BLOCKS][MAX_WIDTH];
    float w_out[MAX_WIDTH * MAX_WIDTH], b_out[MAX_WIDTH];
} Gradient;

static void prepare(const Net *net, Weights *w) {
    int64_t k = net->features + net->rest, m = net->width, po = padded(net->outputs), pf = padded(net->features);
    memset(w, 0, sizeof *w);
    for (int64_t j = 0; j < m; j++)
        for (int64_t i = 0; i < k; i++) w->in_t[i * m + j] = net->w_in[j * k + i];
    for (int64_t b = 0; b < net->blocks; b++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t i = 0; i < m; i++) w->blocks_t[b][i * m + j] = net->w_blocks[(b * m + j) * m + i];
    for (int64_t c = 0; c < net->outputs; c++)
        for (int64_t j = 0; j < m; j++) w->out_t[j * po + c] = net->w_out[c * m + j];
    for (int64_t j = 0; j < m; j++)
        for (int64_t i = 0; i < net->features; i++) w->in_feat[j * pf + i] = net->w_in[j * k + i];
    if (!net->bf16) return;
    pack_pairs(w->in_t, k, m, m, w->in_p);
    pack_pairs(w->in_feat, m, pf, pf, w->in_feat_p);
    for (int64_t b = 0; b < net->blocks; b++) {
        pack_pairs(w->blocks_t[b], m, m, m, w->blocks_tp[b]);
        pack_pairs(net->w_blocks + b * m * m, m, m, m, w->blocks_p[b]);
    }
}

/* out[r, :16 nv] (+)= x[r, :k] @ w over the tile in the net's precision: w (k, 16 nv) float32 with row stride ldw,
 * wp the same as pack_pairs lays it out. */
static inline __attribute__((always_inline)) void mm(const Net *net, Tile *tl, int rows, const float *x, int64_t ldx,
                                                     int64_t k, const float *w, const uint16_t *wp, int64_t ldw,
                                                     float *out, int64_t ldo, int nv, int accumulate) {
#if defined(__AVX512BF16__)
    if (net->bf16) {
        int64_t kp = (k + 1) / 2 * 2;
        rows_bf16(x, rows, k, ldx, tl->xb);
        int v = 0;
        for (; v + MAX_VECTORS <= nv; v += MAX_VECTORS)
            product_bf16_part(rows, tl->xb, kp, wp + v * 2 * V, 2 * ldw, out + v * V, ldo, MAX_VECTORS, accumulate);
        switch (nv - v) {
        case 1: product_bf16_part(rows, tl->xb, kp, wp + v * 2 * V, 2 * ldw, out + v * V, ldo, 1, accumulate); break;
        case 2: product_bf16_part(rows, tl->xb, kp, wp + v * 2 * V, 2 * ldw, out + v * V, ldo, 2, accumulate); break;
        case 3: product_bf16_part(rows, tl->xb, kp, wp + v * 2 * V, 2 * ldw, out + v * V, ldo, 3, accumulate); break;
        default: break;
        }
        return;
    }
#else
    (void)tl, (void)wp;
#endif
    product(rows, x, ldx, k, w, ldw, out, ldo, nv, accumulate);
}

/* outer in the net's precision. */
static inline __attribute__((always_inline)) void mm_outer(const Net *net, Tile *tl, int rows, const float *x,
                                                           int64_t ldx, int64_t k, const float *g, int64_t ldg,
                                                           int nv, float *gw) {
#if defined(__AVX512BF16__)
    if (net->bf16) {
        int64_t kq = padded(k);
        pack_pairs_tile(x, rows, kq, ldx, tl->xq); /* columns past k: whatever x's row holds there, never read */
        pack_pairs_tile(g, rows, (int64_t)nv * V, ldg, tl->gq);
        outer_bf16((rows + 1) / 2, tl->xq, k, kq, tl->gq, nv, gw);
        return;
    }
#else
    (void)tl;
#endif
    outer(rows, x, ldx, k, g, ldg, nv, gw);
}

static int shape_ok(const Net *net) {
    return net->width > 0 && net->width <= MAX_WIDTH && net->width % V == 0 &&
           net->features + net->rest <= MAX_INPUTS && padded(net->features) <= MAX_INPUTS &&
           net->outputs <= MAX_WIDTH && net->blocks >= 0 && net->blocks <= MAX_BLOCKS;
}

static void gather_inputs(const Net *net, int64_t t0, int rows, float *x) {
    int64_t k = net->features + net->rest;
    for (int r = 0; r < rows; r++) { /* loops, not memcpy: rows of a few dozen floats */
        const float *f = net->feat + (t0 + r) * net->features, *e = net->rest_in + (t0 + r) * net->rest;
        for (int64_t i = 0; i < net->features; i++) x[r * k + i] = f[i];
        for (int64_t i = 0; i < net->rest; i++) x[r * k + net->features + i] = e[i];
    }
}

/* a = act(z), for SiLU from its saved sigmoid s (no exponentials in the backward). */
static inline void activated(const float *z, const float *s, float *a, int64_t count, int32_t act) {
    if (act == ACT_RELU)
        for (int64_t i = 0; i < count; i++) a[i] = z[i] > 0.0f ? z[i] : 0.0f;
    else
        for (int64_t i = 0; i < count; i++) a[i] = z[i] * s[i];
}

/* The hidden states h of the tile from its saved pre-activations and sigmoids. */
static inline __attribute__((always_inline)) void hidden(const Net *net, Tile *tl, int rows, int64_t width) {
    int64_t count = rows * width;
    activated(tl->z[0], tl->s[0], tl->h[0], count, net->act);
    for (int64_t b = 1; b <= net->blocks; b++) {
        activated(tl->z[b], tl->s[b], tl->a, count, net->act);
        for (int64_t i = 0; i < count; i++) tl->h[b][i] = tl->h[b - 1][i] + tl->a[i];
    }
}

/* The tile's z and s: where they are kept in `saved` (2, layers, n, width). */
static inline void point(const Net *net, Tile *tl, float *saved, int64_t t0, int64_t width) {
    int64_t layers = net->blocks + 1;
    for (int64_t b = 0; b < layers; b++) {
        tl->z[b] = saved + (b * net->n + t0) * width;
        tl->s[b] = saved + ((layers + b) * net->n + t0) * width;
    }
}

/* The tile's forward into out (n, outputs); every layer's pre-activations into `saved` (layers, n, width). */
static inline __attribute__((always_inline)) void forward_tile(const Net *net, const Weights *w, Tile *tl,
                                                               int64_t t0, int rows, float *out, float *saved,
                                                               int nv) {
    int64_t width = (int64_t)nv * V, k = net->features + net->rest, po = padded(net->outputs);
    gather_inputs(net, t0, rows, tl->x);
    point(net, tl, saved, t0, width);
    mm(net, tl, rows, tl->x, k, k, w->in_t, w->in_p, width, tl->z[0], width, nv, 0);
    for (int r = 0; r < rows; r++)
        for (int64_t j = 0; j < width; j++) tl->z[0][r * width + j] += net->b_in[j];
    activate(tl->z[0], tl->h[0], tl->s[0], rows * width, net->act);
    for (int64_t b = 1; b <= net->blocks; b++) {
        float *z = tl->z[b];
        mm(net, tl, rows, tl->h[b - 1], width, width, w->blocks_t[b - 1], w->blocks_tp[b - 1], width, z, width, nv, 0);
        const float *bias = net->b_blocks + (b - 1) * width;
        for (int r = 0; r < rows; r++)
            for (int64_t j = 0; j < width; j++) z[r * width + j] += bias[j];
        activate(z, tl->a, tl->s[b], rows * width, net->act);
        for (int64_t i = 0; i < rows * width; i++) tl->h[b][i] = tl->h[b - 1][i] + tl->a[i];
    }
    product(rows, tl->h[net->blocks], width, width, w->out_t, po, tl->o, po, (int)(po / V), 0);
    for (int r = 0; r < rows; r++)
        for (int64_t c = 0; c < net->outputs; c++) out[(t0 + r) * net->outputs + c] = tl->o[r * po + c] + net->b_out[c];
}

/* The tile's backward from the output's gradient: the weights' gradient added into `gw`, the features' written to
 * `grad_feat` (when given). The activations come back from the saved pre-activations. */
static inline __attribute__((always_inline)) void backward_tile(const Net *net, const Weights *w, Tile *tl,
                                                                int64_t t0, int rows, const float *saved,
                                                                const float *grad_out, float *grad_feat,
                                                                Gradient *gw, int nv) {
    int64_t width = (int64_t)nv * V, k = net->features + net->rest, n_out = net->outputs;
    int64_t nf = net->features, pf = padded(nf);
    gather_inputs(net, t0, rows, tl->x);
    point(net, tl, (float *)saved, t0, width); /* read only */
    hidden(net, tl, rows, width);
    const float *go = grad_out + t0 * n_out;
    /* the output layer: g = grad_out @ W_out; its weights' gradient grad_out^T h */
    product(rows, go, n_out, n_out, net->w_out, width, tl->g, width, nv, 0);
    outer(rows, go, n_out, n_out, tl->h[net->blocks], width, nv, gw->w_out);
    for (int r = 0; r < rows; r++)
        for (int64_t c = 0; c < n_out; c++) gw->b_out[c] += go[r * n_out + c];
    for (int64_t b = net->blocks; b >= 1; b--) {
        times_derivative(tl->gz, tl->g, tl->z[b], tl->s[b], rows * width, net->act);
        mm_outer(net, tl, rows, tl->gz, width, width, tl->h[b - 1], width, nv, gw->w_blocks[b - 1]);
        for (int r = 0; r < rows; r++)
            for (int64_t j = 0; j < width; j++) gw->b_blocks[b - 1][j] += tl->gz[r * width + j];
        mm(net, tl, rows, tl->gz, width, width, net->w_blocks + (b - 1) * width * width, w->blocks_p[b - 1], width,
           tl->g, width, nv, 1);
    }
    times_derivative(tl->g, tl->g, tl->z[0], tl->s[0], rows * width, net->act);
    mm_outer(net, tl, rows, tl->x, k, k, tl->g, width, nv, gw->w_in_t);
    for (int r = 0; r < rows; r++)
        for (int64_t j = 0; j < width; j++) gw->b_in[j] += tl->g[r * width + j];
    if (!grad_feat) return;
    mm(net, tl, rows, tl->g, width, width, w->in_feat, w->in_feat_p, pf, tl->o, pf, (int)(pf / V), 0);
    for (int r = 0; r < rows; r++)
        for (int64_t i = 0; i < nf; i++) grad_feat[(t0 + r) * nf + i] = tl->o[r * pf + i];
}

#define BY_WIDTH(call)                  \
    switch (net.width / V) {            \
    case 1: call(1); break;             \
    case 2: call(2); break;             \
    case 3: call(3); break;             \
    default: call(4); break;            \
    }

/* The forward of n texels: out (n, outputs); every layer's pre-activations and (SiLU) sigmoids into saved
 * (2, blocks + 1, n, width) for the backward. Returns 0, -1 for a shape this file does not take, -2 out of memory. */
int ngtc_synthesize(int64_t n, const float *feat, int64_t features, const float *rest, int64_t n_rest, int64_t width,
                    int64_t blocks, int64_t outputs, int32_t act, int32_t bf16, const float *w_in, const float *b_in,
                    const float *w_blocks, const float *b_blocks, const float *w_out, const float *b_out, float *out,
                    float *saved, int32_t threads) {
    Net net = {n, features, n_rest, width, blocks, outputs, act, bf16, feat, rest, w_in, b_in, w_blocks, b_blocks,
               w_out, b_out};
    if (!shape_ok(&net) || (bf16 && !HAS_BF16)) return -1;
    Weights *w = malloc(sizeof(Weights));
    if (!w) return -2;
    prepare(&net, w);
    int64_t tiles = (n + TILE - 1) / TILE;
    int failed = 0;
#pragma omp parallel num_threads(threads < 1 ? 1 : threads) reduction(| : failed)
    {
        Tile *tl = malloc(sizeof(Tile));
        failed = !tl;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < tiles; i++) {
            if (!tl) continue;
            int rows = (int)(n - i * TILE < TILE ? n - i * TILE : TILE);
#define FORWARD(nv) forward_tile(&net, w, tl, i * TILE, rows, out, saved, nv)
            BY_WIDTH(FORWARD)
#undef FORWARD
        }
        free(tl);
    }
    free(w);
    return failed ? -2 : 0;
}

/* The parts' sums added in order into `out` (count floats at offset `at` of each part's Gradient). */
static void reduce(const Gradient *parts, size_t at, int64_t count, float *out) {
    for (int64_t i = 0; i < count; i++) {
        float acc = 0.0f;
        for (int p = 0; p < PARTS; p++) acc += ((const float *)((const char *)&parts[p] + at))[i];
        out[i] = acc;
    }
}

/* The backward of n texels from the output's gradient `grad_out` (n, outputs) and the forward's `saved`: the weights'
 * and biases' gradients written to grad_* (PyTorch's layouts), the features' to grad_feat (n, features) unless it is
 * NULL. Returns as ngtc_synthesize. */
int ngtc_synthesize_backward(int64_t n, const float *feat, int64_t features, const float *rest, int64_t n_rest,
                             int64_t width, int64_t blocks, int64_t outputs, int32_t act, int32_t bf16,
                             const float *w_in,
                             const float *b_in, const float *w_blocks, const float *b_blocks, const float *w_out,
                             const float *b_out, const float *saved, const float *grad_out, float *grad_feat,
                             float *grad_w_in, float *grad_b_in, float *grad_w_blocks, float *grad_b_blocks,
                             float *grad_w_out, float *grad_b_out, int32_t threads) {
    Net net = {n, features, n_rest, width, blocks, outputs, act, bf16, feat, rest, w_in, b_in, w_blocks, b_blocks,
               w_out, b_out};
    if (!shape_ok(&net) || (bf16 && !HAS_BF16)) return -1;
    Weights *w = malloc(sizeof(Weights));
    Gradient *parts = calloc(PARTS, sizeof(Gradient));
    if (!w || !parts) {
        free(w);
        free(parts);
        return -2;
    }
    prepare(&net, w);
    int failed = 0;
#pragma omp parallel num_threads(threads < 1 ? 1 : threads) reduction(| : failed)
    {
        Tile *tl = malloc(sizeof(Tile));
        failed = !tl;
#pragma omp for schedule(static, 1)
        for (int64_t p = 0; p < PARTS; p++) {
            int64_t tiles = (n + TILE - 1) / TILE, first = tiles * p / PARTS, last = tiles * (p + 1) / PARTS;
            for (int64_t i = first; i < last && tl; i++) {
                int rows = (int)(n - i * TILE < TILE ? n - i * TILE : TILE);
#define BACKWARD(nv) backward_tile(&net, w, tl, i * TILE, rows, saved, grad_out, grad_feat, &parts[p], nv)
                BY_WIDTH(BACKWARD)
#undef BACKWARD
            }
        }
        free(tl);
    }
    int64_t k = features + n_rest;
    float *w_in_t = malloc(k * width * sizeof(float));
    if (!w_in_t) failed = 1;
    if (!failed) {
        reduce(parts, offsetof(Gradient, w_in_t), k * width, w_in_t);
        for (int64_t j = 0; j < width; j++)
            for (int64_t i = 0; i < k; i++) grad_w_in[j * k + i] = w_in_t[i * width + j];
        reduce(parts, offsetof(Gradient, b_in), width, grad_b_in);
        for (int64_t b = 0; b < blocks; b++) {
            reduce(parts, offsetof(Gradient, w_blocks) + b * sizeof(parts->w_blocks[0]), width * width,
                   grad_w_blocks + b * width * width);
            reduce(parts, offsetof(Gradient, b_blocks) + b * sizeof(parts->b_blocks[0]), width,
                   grad_b_blocks + b * width);
        }
        reduce(parts, offsetof(Gradient, w_out), outputs * width, grad_w_out);
        reduce(parts, offsetof(Gradient, b_out), outputs, grad_b_out);
    }
    free(w_in_t);
    free(w);
    free(parts);
    return failed ? -2 : 0;
}
