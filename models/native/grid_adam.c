/* Adam over a free grid, the clamp to the quantizer's range and the clearing of the grid's gradient buffer, in one
 * pass. models/native_grid_adam.py calls this file, and documents it. What it computes is torch.optim.Adam's step
 * (float32, no weight decay) followed by `clamp_(lo, hi)` and models/grid_gradient.py's `clear_`: the tests compare
 * them (tests/test_grid_optimizer.py). Each value's update is its own, so any thread count gives the same bits. */
#include <stdint.h>
#include <string.h>
#include <math.h>

#define CHUNK_ROWS 2048  /* rows a thread takes at a time */

/* n consecutive values: Adam's moments and step, then the clamp. With g, the gradient, read and then zeroed; without,
 * a gradient of zero (rows no backward touched). Runs of whole rows, so that the loops take full vectors. */
static void span_step(float *restrict p, float *restrict m, float *restrict v, float *restrict g, int64_t n,
                      float beta1, float beta2, float step_size, float bc2_sqrt, float eps, float lo, float hi) {
    if (g) {
        for (int64_t k = 0; k < n; k++) {
            float mk = m[k] + (g[k] - m[k]) * (1.0f - beta1); /* exp_avg.lerp_(grad, 1 - beta1) */
            float vk = v[k] * beta2 + (1.0f - beta2) * g[k] * g[k];
            float pk = p[k] - step_size * mk / (sqrtf(vk) / bc2_sqrt + eps);
            m[k] = mk;
            v[k] = vk;
            p[k] = pk < lo ? lo : (pk > hi ? hi : pk);
        }
        memset(g, 0, (size_t)n * sizeof(float));
    } else {
        for (int64_t k = 0; k < n; k++) {
            float mk = m[k] - m[k] * (1.0f - beta1);
            float vk = v[k] * beta2;
            float pk = p[k] - step_size * mk / (sqrtf(vk) / bc2_sqrt + eps);
            m[k] = mk;
            v[k] = vk;
            p[k] = pk < lo ? lo : (pk > hi ? hi : pk);
        }
    }
}

/* One step over `rows` rows of c values: p the grid, g its gradient buffer, m and v Adam's moments. `touched` (a byte
 * a row, or NULL for every row) marks the rows a backward added into; the others' gradient is zero and is not read.
 * A touched row's gradient is zeroed and its byte cleared, ready for the next step's backward.
 * step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t). Returns 0, or -1 for a shape it does not take. */
int ngtc_grid_adam(float *p, float *g, float *m, float *v, uint8_t *touched, int64_t rows, int64_t c, float beta1,
                   float beta2, float step_size, float bc2_sqrt, float eps, float lo, float hi, int threads) {
    if (c < 1 || rows < 0) return -1;
    int64_t chunks = (rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static)
    for (int64_t chunk = 0; chunk < chunks; chunk++) {
        int64_t r = chunk * CHUNK_ROWS, end = r + CHUNK_ROWS < rows ? r + CHUNK_ROWS : rows;
        while (r < end) {  /* runs of rows alike: touched (their gradient read) or not */
            int read = touched == 0 || touched[r];
            int64_t stop = r + 1;
            if (touched)
                while (stop < end && (touched[stop] != 0) == read) stop++;
            else
                stop = end;
            span_step(p + r * c, m + r * c, v + r * c, read ? g + r * c : 0, (stop - r) * c, beta1, beta2, step_size,
                      bc2_sqrt, eps, lo, hi);
            if (touched) memset(touched + r, 0, (size_t)(stop - r));
            r = stop;
        }
    }
    return 0;
}

/* Mark rows idx[0 .. n) of `rows` as touched (a byte each); an index out of range marks nothing. */
void ngtc_mark_rows(uint8_t *touched, int64_t rows, const int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if ((uint64_t)idx[i] < (uint64_t)rows) touched[idx[i]] = 1;
}
