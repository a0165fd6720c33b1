/* The GridSampler's training reads of one free grid and its pyramid, fused: models/native_reads.py builds and
 * calls this file, and documents it. What it computes is models/pyramid_atlas.py's `read_pyramid` on a batch
 * sorted by level in runs (training's batches), with the quantization of models/quantization.py; the tests
 * compare the two (tests/test_native_reads.py). Plain C, no PyTorch headers: it compiles in a second. */
#include <math.h>
#include <stdint.h>

enum { CELL_NONE = 0, CELL_NOISE = 1, CELL_STE = 2 };
enum { MAX_CHANNELS = 64, MAX_FOOTPRINT = 64 }; /* per-tap buffers: channels, footprint cells a side */
enum { MAX_THREADS = 64 };

/* i mod n, never negative. Training's addresses are in [-n, 2n) (a tap at most one cell outside its level, a
 * footprint cell at most one outside the grid), wrapped there without an integer division. */
static inline int64_t wrapped(int64_t i, int64_t n) {
    if (i >= -n && i < 2 * n) return i < 0 ? i + n : (i >= n ? i - n : i);
    int64_t m = i % n;
    return m < 0 ? m + n : m;
}

/* Uniform in [-0.5, 0.5): value `i` of the stream `seed` (splitmix64 of the pair). */
static inline float centred_uniform(uint64_t seed, uint64_t i) {
    uint64_t x = seed ^ (i * 0xD1B54A32D192ED03ull);
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (float)(x >> 40) * (1.0f / 16777216.0f) - 0.5f;
}

/* quantization.rounded: clamp, to the nearest of the 2^bits levels (ties to even, as torch.round), back. */
static inline float rounded(float x, float lo, float hi, float step) {
    float v = x < lo ? lo : (x > hi ? hi : x);
    v = v - lo;
    v = v / step;
    v = (v + 12582912.0f) - 12582912.0f; /* 1.5 * 2^23: the nearest integer, ties to even, for |v| < 2^22 */
    v = v * step;
    return v + lo;
}

typedef struct {
    const float *grid;         /* (h0, w0, c) */
    int64_t h0, w0, c;
    const float *uv;           /* (n, 2) */
    const int64_t *sizes;      /* (levels + 1, 2): (w, h) of each level, level 0 the grid */
    const int64_t *offsets;    /* (levels + 1,): each deep level's first atlas row */
    const float *atlas;        /* deep levels' rows, c floats each */
    int64_t sparse;            /* levels 0 .. sparse read the grid */
    const float *footprint;    /* per-axis weights of levels 1 .. sparse, one after the other */
    const int64_t *fp_start;   /* (sparse + 2,): level lv's weights are footprint[fp_start[lv] .. fp_start[lv + 1]] */
    int32_t prefilter;
    const float *steps;        /* (c,) feature step per channel */
    float lo, hi;
    const float *spread;       /* (levels + 1,) a level cell's rounding error in code steps */
    int32_t cell_mode;         /* CELL_*: the quantization of gathered grid cells */
    int32_t pool_noise;        /* noise on pooled and deep values (training's "noise" mode) */
    uint64_t seed;
    int32_t slots;             /* 4: G0 read as corners, side by side; 1: bilinear */
} Read;

/* One gathered grid value as the quantization of its mode sees it. */
static inline float cell_value(const Read *r, float x, int64_t ch, uint64_t counter) {
    switch (r->cell_mode) {
    case CELL_NOISE: return x + centred_uniform(r->seed, counter) * r->steps[ch];
    case CELL_STE: return rounded(x, r->lo, r->hi, r->steps[ch]);
    default: return x < r->lo ? r->lo : (x > r->hi ? r->hi : x);
    }
}

/* The four taps around row `row`'s uv on a w x h level: cells (x, y) in the order c00, c10, c01, c11, and the
 * fractions between them (grid_taps.tap_cells). */
static void taps(const Read *r, int64_t row, int64_t w, int64_t h, int64_t xs[4], int64_t ys[4], float *fx,
                 float *fy) {
    float px = r->uv[2 * row] * (float)w - 0.5f, py = r->uv[2 * row + 1] * (float)h - 0.5f;
    float x0 = floorf(px), y0 = floorf(py);
    *fx = px - x0;
    *fy = py - y0;
    int64_t ix = (int64_t)x0, iy = (int64_t)y0;
    xs[0] = xs[2] = wrapped(ix, w);
    xs[1] = xs[3] = wrapped(ix + 1, w);
    ys[0] = ys[1] = wrapped(iy, h);
    ys[2] = ys[3] = wrapped(iy + 1, h);
}

/* Mixes four tap values (4, c) into the row's output (slots * c): grid_taps.mix_bilinear or mix_corners. */
static void mix(const Read *r, const float *v, float fx, float fy, float *out) {
    int64_t c = r->c;
    float gx = 1.0f - fx, gy = 1.0f - fy;
    if (r->slots == 1) {
        for (int64_t ch = 0; ch < c; ch++) {
            float top = v[ch] * gx + v[c + ch] * fx;
            float bottom = v[2 * c + ch] * gx + v[3 * c + ch] * fx;
            out[ch] = top * gy + bottom * fy;
        }
        return;
    }
    float w[4] = {gx * gy, fx * gy, gx * fy, fx * fy};
    for (int t = 0; t < 4; t++)
        for (int64_t ch = 0; ch < c; ch++) out[t * c + ch] = v[t * c + ch] * w[t];
}

/* The tap weights a mix gives each tap (the backward's factors): bilinear's, or the corners' (the same). */
static void tap_weights(float fx, float fy, float w[4]) {
    float gx = 1.0f - fx, gy = 1.0f - fy;
    w[0] = gx * gy;
    w[1] = fx * gy;
    w[2] = gx * fy;
    w[3] = fx * fy;
}

/* Reads rows [start, stop) at level `level` <= sparse from the grid. With `cells` (not NULL) records each gathered
 * grid cell, its weight in the output and the output slot it lands in (row * slots + slot): the backward's
 * entries. Returns the entries written. */
static int64_t read_grid(const Read *r, int32_t level, int64_t start, int64_t stop, int32_t centred, float *out,
                         int64_t *cells, float *weights, int32_t *outs) {
    int64_t c = r->c, w = r->sizes[2 * level], h = r->sizes[2 * level + 1];
    const float *fp = level ? r->footprint + r->fp_start[level] : 0;
    int64_t n = level ? r->fp_start[level + 1] - r->fp_start[level] : 1;
    int64_t side = level ? (r->prefilter ? (int64_t)1 << (level - 1) : (int64_t)1 << level) : 1;
    int64_t pad = level && r->prefilter ? 1 : 0;
    int ntaps = centred ? 1 : 4;
    float v[4 * MAX_CHANNELS], rowbuf[4 * MAX_CHANNELS];
    int64_t e = 0;
    for (int64_t row = start; row < stop; row++) {
        int64_t xs[4], ys[4];
        float fx, fy, tw[4];
        taps(r, row, w, h, xs, ys, &fx, &fy);
        if (centred) fx = fy = 0.0f;
        tap_weights(fx, fy, tw);
        for (int t = 0; t < ntaps; t++) {
            float *vt = v + t * c;
            uint64_t counter = ((uint64_t)row * 4 + t) * (uint64_t)c * 2;
            if (!level) {
                int64_t cell = ys[t] * r->w0 + xs[t];
                const float *g = r->grid + cell * c;
                for (int64_t ch = 0; ch < c; ch++) vt[ch] = cell_value(r, g[ch], ch, counter + 2 * ch);
                if (cells) {
                    cells[e] = cell;
                    weights[e] = centred ? 1.0f : tw[t];
                    outs[e++] = (int32_t)(row * r->slots + (r->slots == 4 ? t : 0));
                }
                continue;
            }
            for (int64_t ch = 0; ch < c; ch++) vt[ch] = 0.0f;
            int64_t cols[MAX_FOOTPRINT];
            for (int64_t dx = 0; dx < n; dx++) cols[dx] = wrapped(xs[t] * side - pad + dx, r->w0);
            for (int64_t dy = 0; dy < n; dy++) {
                int64_t gy = wrapped(ys[t] * side - pad + dy, r->h0);
                for (int64_t dx = 0; dx < n; dx++) {
                    int64_t cell = gy * r->w0 + cols[dx];
                    float fw = fp[dy] * fp[dx];
                    const float *g = r->grid + cell * c;
                    for (int64_t ch = 0; ch < c; ch++) {
                        float x = r->pool_noise ? g[ch] : cell_value(r, g[ch], ch, counter + 2 * ch);
                        vt[ch] += x * fw;
                    }
                    if (cells) {
                        cells[e] = cell;
                        weights[e] = fw * (centred ? 1.0f : tw[t]);
                        outs[e++] = (int32_t)(row * r->slots + (r->slots == 4 ? t : 0));
                    }
                }
            }
            if (r->pool_noise)
                for (int64_t ch = 0; ch < c; ch++)
                    vt[ch] += centred_uniform(r->seed, counter + 2 * ch + 1) * (r->steps[ch] * r->spread[level]);
        }
        float *o = out + row * r->slots * c;
        if (centred) {  /* grid_taps.mix_centred: the first tap's values, the other slots 0 */
            for (int64_t k = 0; k < r->slots * c; k++) o[k] = k < c ? v[k] : 0.0f;
        } else {
            mix(r, v, fx, fy, rowbuf);
            for (int64_t k = 0; k < r->slots * c; k++) o[k] = rowbuf[k];
        }
    }
    return e;
}

/* Reads rows [start, stop) at a deep level from the atlas: no gradient, noise per cell in "noise" mode. */
static void read_atlas(const Read *r, int32_t level, int64_t start, int64_t stop, float *out) {
    int64_t c = r->c, w = r->sizes[2 * level], h = r->sizes[2 * level + 1];
    float v[4 * MAX_CHANNELS];
    for (int64_t row = start; row < stop; row++) {
        int64_t xs[4], ys[4];
        float fx, fy;
        taps(r, row, w, h, xs, ys, &fx, &fy);
        for (int t = 0; t < 4; t++) {
            const float *a = r->atlas + (r->offsets[level] + ys[t] * w + xs[t]) * c;
            uint64_t counter = ((uint64_t)row * 4 + t) * (uint64_t)c * 2;
            for (int64_t ch = 0; ch < c; ch++) {
                float x = a[ch];
                if (r->pool_noise) x += centred_uniform(r->seed, counter + 2 * ch) * (r->spread[level] * r->steps[ch]);
                v[t * c + ch] = x;
            }
        }
        mix(r, v, fx, fy, out + row * r->slots * c);
    }
}

/* Entries a row of `run` records (read_grid): its taps times the cells each pools. */
static int64_t row_entries(const Read *r, const int32_t *run) {
    if (run[0] > r->sparse) return 0;
    int64_t n = run[0] ? r->fp_start[run[0] + 1] - r->fp_start[run[0]] : 1;
    return (run[3] ? 1 : 4) * n * n;
}

typedef struct {
    const Read *r;
    const int32_t *runs;
    int64_t n_runs, part, parts;
    float *out;
    int64_t *cells;
    float *weights;
    int32_t *outs;
} Job;

/* Part `part` of `parts` of every run: its share of the run's rows, so that the parts' work is alike. */
static void *read_part(void *arg) {
    const Job *j = arg;
    int64_t e = 0;
    for (int64_t k = 0; k < j->n_runs; k++) {
        const int32_t *run = j->runs + 4 * k;
        int64_t rows = run[2] - run[1], m = row_entries(j->r, run);
        int64_t a = run[1] + rows * j->part / j->parts, b = run[1] + rows * (j->part + 1) / j->parts;
        if (run[0] <= j->r->sparse) {
            int64_t at = e + (a - run[1]) * m;
            read_grid(j->r, run[0], a, b, run[3], j->out, j->cells ? j->cells + at : 0, j->cells ? j->weights + at : 0,
                      j->cells ? j->outs + at : 0);
        } else {
            read_atlas(j->r, run[0], a, b, j->out);
        }
        e += rows * m;
    }
    return 0;
}

/* The forward: every run (level, start, stop, centred) of rows into `out` (n, slots * c), on `threads` threads;
 * entries as read_grid. Returns the entries written, or -1 past the per-tap buffers (MAX_CHANNELS, MAX_FOOTPRINT). */
int64_t ngtc_read(const float *grid, int64_t h0, int64_t w0, int64_t c, const float *uv, const int32_t *runs,
                  int64_t n_runs, const int64_t *sizes, const int64_t *offsets, const float *atlas, int64_t sparse,
                  const float *footprint, const int64_t *fp_start, int32_t prefilter, const float *steps, float lo,
                  float hi, const float *spread, int32_t cell_mode, int32_t pool_noise, uint64_t seed,
                  int32_t slots, float *out, int64_t *cells, float *weights, int32_t *outs, int32_t threads) {
    if (c > MAX_CHANNELS || (sparse > 0 && fp_start[sparse + 1] - fp_start[sparse] > MAX_FOOTPRINT)) return -1;
    Read r = {grid, h0, w0, c, uv, sizes, offsets, atlas, sparse, footprint, fp_start, prefilter, steps, lo, hi,
              spread, cell_mode, pool_noise, seed, slots};
    int64_t parts = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    Job jobs[MAX_THREADS];
    for (int64_t p = 0; p < parts; p++) jobs[p] = (Job){&r, runs, n_runs, p, parts, out, cells, weights, outs};
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int64_t p = 0; p < parts; p++) read_part(&jobs[p]);
    int64_t e = 0;
    for (int64_t k = 0; k < n_runs; k++) e += (runs[4 * k + 2] - runs[4 * k + 1]) * row_entries(&r, runs + 4 * k);
    return e;
}

typedef struct {
    float *grad;
    int64_t c, lo, hi;
    const float *grad_out;
    const int64_t *cells;
    const float *weights;
    const int32_t *outs;
    int64_t n;
} Scatter;

static void *scatter_part(void *arg) {
    const Scatter *s = arg;
    for (int64_t e = 0; e < s->n; e++) {
        int64_t cell = s->cells[e];
        if (cell < s->lo || cell >= s->hi) continue;
        float w = s->weights[e];
        const float *g = s->grad_out + (int64_t)s->outs[e] * s->c;
        float *d = s->grad + cell * s->c;
        for (int64_t ch = 0; ch < s->c; ch++) d[ch] += w * g[ch];
    }
    return 0;
}

/* The backward: each entry's output gradient times its weight, added into the grid's gradient (rows, c). Each
 * thread owns a range of the grid's rows and adds into them in entry order: the same bits on any thread count. */
void ngtc_scatter(float *grad, int64_t rows, int64_t c, const float *grad_out, const int64_t *cells,
                  const float *weights, const int32_t *outs, int64_t n, int32_t threads) {
    int64_t parts = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    Scatter jobs[MAX_THREADS];
    for (int64_t p = 0; p < parts; p++)
        jobs[p] = (Scatter){grad, c, rows * p / parts, rows * (p + 1) / parts, grad_out, cells, weights, outs, n};
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int64_t p = 0; p < parts; p++) scatter_part(&jobs[p]);
}
