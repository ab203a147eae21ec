// 2-D convolution and transposed convolution for the CPU, the whole batch as ONE matrix product.
//
// Paddle 3.3's CPU kernels unfold and multiply image by image: for D's conv2 (64 -> 128 channels,
// 14x14 -> 7x7) that is 64 products of 49 columns each, much slower than one product of 64 x 49 columns
// (docs/performance.md). Here each pass unfolds the whole batch (im2col) into a [channels x k x k, batch x positions]
// matrix and makes one cblas_sgemm call into MKL, the library Paddle itself uses (MKL_NUM_THREADS sets its
// threads); the unfolding and its adjoint run on OpenMP threads (OMP_NUM_THREADS). A transposed
// convolution is the input gradient of the convolution it transposes, so the same three products serve
// both operators:
//   unfold product  rows = W @ im2col(image)           a convolution's output (as channel rows)
//   fold product    image = col2im(W^T @ rows)         a convolution's input gradient
//   weight product  dW = rows @ im2col(image)^T        a convolution's weight gradient
#include <algorithm>
#include <vector>

#include "paddle/extension.h"

extern "C" void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                            const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// a / b rounded down, and up, for b > 0: C++'s own division rounds towards 0, up for a negative a.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// The side of a convolution's output, and of a transposed convolution's, for an input of side `in`.
int64_t conv_side(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}
int64_t deconv_side(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return (in - 1) * stride - 2 * padding + kernel;
}

// Scratch memory, one buffer per role, kept by each thread and only ever grown. The unfolded batch is tens of
// MB: fresh from malloc, glibc maps such blocks from the kernel and faults them in page by page on every
// call, a cost that grows with the batch (docs/performance.md).
enum Scratch { kUnfolded, kChannelRows, kProduct, kScratchRoles };

float* scratch(Scratch role, int64_t size) {
  thread_local std::vector<float> buffers[kScratchRoles];
  auto& buffer = buffers[role];
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(size);
  return buffer.data();  // every entry is written before it is read
}

// A convolution's geometry: it reads [batch, channels, in, in] and writes `out` x `out` positions per image.
struct Geometry {
  int64_t batch, channels, in, out, kernel, stride, padding;
  int64_t positions() const { return out * out; }
  int64_t rows() const { return channels * kernel * kernel; }
  int64_t cols() const { return batch * positions(); }
  // The output positions o whose input position o * stride - padding + tap lies inside the image.
  // Past the edge at every position, as tap 3 of a 4x4 kernel on a side of 2, the range is empty.
  int64_t first(int64_t tap) const { return std::max<int64_t>(0, ceil_div(padding - tap, stride)); }
  int64_t last(int64_t tap) const { return std::min<int64_t>(out, floor_div(in - 1 + padding - tap, stride) + 1); }
};

// cols[(c, ki, kj)][(n, oh, ow)] = image[n, c, oh * stride - padding + ki, ow * stride - padding + kj], or 0.
void im2col(const Geometry& g, const float* image, float* cols) {
#pragma omp parallel for collapse(3)  // one row per (c, ki, kj): 16 rows even with one channel
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t ki = 0; ki < g.kernel; ++ki)
      for (int64_t kj = 0; kj < g.kernel; ++kj) {
        float* row = cols + ((c * g.kernel + ki) * g.kernel + kj) * g.cols();
        const int64_t h0 = g.first(ki), h1 = g.last(ki), w0 = g.first(kj), w1 = g.last(kj);
        for (int64_t n = 0; n < g.batch; ++n) {
          const float* plane = image + (n * g.channels + c) * g.in * g.in;
          float* dst = row + n * g.positions();
          std::fill(dst, dst + g.positions(), 0.0f);
          for (int64_t oh = h0; oh < h1; ++oh) {
            const float* src = plane + (oh * g.stride - g.padding + ki) * g.in - g.padding + kj;
            for (int64_t ow = w0; ow < w1; ++ow) dst[oh * g.out + ow] = src[ow * g.stride];
          }
        }
      }
}

// The adjoint of im2col: image = 0, then every column entry added back where im2col read it from.
// One image plane per (c, n), so that no two threads add into the same pixel.
void col2im(const Geometry& g, const float* cols, float* image) {
#pragma omp parallel for collapse(2)
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t n = 0; n < g.batch; ++n) {
      float* plane = image + (n * g.channels + c) * g.in * g.in;
      std::fill_n(plane, g.in * g.in, 0.0f);
      for (int64_t ki = 0; ki < g.kernel; ++ki)
        for (int64_t kj = 0; kj < g.kernel; ++kj) {
          const float* src = cols + ((c * g.kernel + ki) * g.kernel + kj) * g.cols() + n * g.positions();
          const int64_t h0 = g.first(ki), h1 = g.last(ki), w0 = g.first(kj), w1 = g.last(kj);
          for (int64_t oh = h0; oh < h1; ++oh) {
            float* dst = plane + (oh * g.stride - g.padding + ki) * g.in - g.padding + kj;
            for (int64_t ow = w0; ow < w1; ++ow) dst[ow * g.stride] += src[oh * g.out + ow];
          }
        }
    }
}

// c[m, n] = op(a) op(b), row-major, op = transpose where asked.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  cblas_sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, m, n, k, 1.0f, a,
              trans_a ? m : k, b, trans_b ? k : n, 0.0f, c, n);
}

const float* unfold(const Geometry& g, const float* image) {
  float* cols = scratch(kUnfolded, g.rows() * g.cols());
  im2col(g, image, cols);
  return cols;
}

// A feature map [batch, channels, side, side] <-> channel rows [channels, batch x side x side].
const float* channel_rows(const paddle::Tensor& t) {
  const auto& s = t.shape();
  const int64_t positions = s[2] * s[3];
  float* rows = scratch(kChannelRows, t.numel());
#pragma omp parallel for
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < s[1]; ++c)
      std::copy_n(t.data<float>() + (n * s[1] + c) * positions, positions, rows + (c * s[0] + n) * positions);
  return rows;
}

paddle::Tensor feature_map(const float* rows, int64_t batch, int64_t channels, int64_t side) {
  auto t = paddle::empty({batch, channels, side, side}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const int64_t positions = side * side;
#pragma omp parallel for
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c)
      std::copy_n(rows + (c * batch + n) * positions, positions, t.data<float>() + (n * channels + c) * positions);
  return t;
}

// The unfold product for weight [filters, g.channels, k, k]: a feature map [batch, filters, out, out].
paddle::Tensor unfold_product(const Geometry& g, const float* weight, int64_t filters, const float* cols) {
  float* rows = scratch(kProduct, filters * g.cols());
  gemm(false, false, filters, g.cols(), g.rows(), weight, cols, rows);
  return feature_map(rows, g.batch, filters, g.out);
}

// The fold product: the image [batch, g.channels, in, in] whose convolution has output gradient `rows`.
paddle::Tensor fold_product(const Geometry& g, const float* weight, int64_t filters, const float* rows) {
  float* cols = scratch(kProduct, g.rows() * g.cols());
  gemm(true, false, g.rows(), g.cols(), filters, weight, rows, cols);
  auto image = paddle::empty({g.batch, g.channels, g.in, g.in}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  col2im(g, cols, image.data<float>());
  return image;
}

// The gradient of an operand that needs none, never read: D's weights in the G+Q step, where D does not
// train, and the images D reads in the D step, which are fed.
paddle::Tensor unwanted(const paddle::Tensor& operand) { return paddle::experimental::zeros_like(operand); }

// The weight product: the weight's gradient.
paddle::Tensor weight_product(const Geometry& g, const paddle::Tensor& weight, const float* rows, const float* cols) {
  auto grad = paddle::empty_like(weight);
  gemm(false, true, weight.shape()[0], g.rows(), g.cols(), rows, cols, grad.data<float>());
  return grad;
}

// x [N, C, H, H], weight [O, C, k, k]: the convolution writes [N, O, H', H'].
Geometry conv_geometry(const paddle::Tensor& x, const paddle::Tensor& weight, int stride, int padding) {
  const auto& s = x.shape();
  const int64_t k = weight.shape()[2];
  return {s[0], s[1], s[2], conv_side(s[2], k, stride, padding), k, stride, padding};
}

// x [N, C, H, H], weight [C, O, k, k]: the convolution it transposes reads [N, O, H', H'] and writes x's shape.
Geometry deconv_geometry(const paddle::Tensor& x, const paddle::Tensor& weight, int stride, int padding) {
  const auto& s = x.shape();
  const int64_t k = weight.shape()[2];
  return {s[0], weight.shape()[1], deconv_side(s[2], k, stride, padding), s[2], k, stride, padding};
}

void check(const paddle::Tensor& x, const paddle::Tensor& weight) {
  PD_CHECK(x.is_cpu() && weight.is_cpu(), "batched_conv runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32 && weight.dtype() == paddle::DataType::FLOAT32,
           "batched_conv takes float32");
  PD_CHECK(x.shape().size() == 4 && x.shape()[2] == x.shape()[3] && weight.shape()[2] == weight.shape()[3],
           "batched_conv takes square NCHW images and square kernels");
}

}  // namespace

std::vector<paddle::Tensor> ConvForward(const paddle::Tensor& x, const paddle::Tensor& weight, int stride, int padding,
                                        bool, bool) {
  check(x, weight);
  const Geometry g = conv_geometry(x, weight, stride, padding);
  return {unfold_product(g, weight.data<float>(), weight.shape()[0], unfold(g, x.data<float>()))};
}

std::vector<paddle::Tensor> ConvBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                         const paddle::Tensor& out_grad, int stride, int padding, bool weight_grad,
                                         bool input_grad) {
  const Geometry g = conv_geometry(x, weight, stride, padding);
  const float* rows = channel_rows(out_grad);
  return {input_grad ? fold_product(g, weight.data<float>(), weight.shape()[0], rows) : unwanted(x),
          weight_grad ? weight_product(g, weight, rows, unfold(g, x.data<float>())) : unwanted(weight)};
}

std::vector<paddle::Tensor> DeconvForward(const paddle::Tensor& x, const paddle::Tensor& weight, int stride,
                                          int padding, bool, bool) {
  check(x, weight);
  const Geometry g = deconv_geometry(x, weight, stride, padding);
  return {fold_product(g, weight.data<float>(), weight.shape()[0], channel_rows(x))};
}

std::vector<paddle::Tensor> DeconvBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                           const paddle::Tensor& out_grad, int stride, int padding, bool weight_grad,
                                           bool input_grad) {
  const Geometry g = deconv_geometry(x, weight, stride, padding);
  const float* cols = unfold(g, out_grad.data<float>());
  return {input_grad ? unfold_product(g, weight.data<float>(), weight.shape()[0], cols) : unwanted(x),
          weight_grad ? weight_product(g, weight, channel_rows(x), cols) : unwanted(weight)};
}

std::vector<std::vector<int64_t>> ConvShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w, int stride,
                                            int padding, bool, bool) {
  return {{x[0], w[0], conv_side(x[2], w[2], stride, padding), conv_side(x[3], w[3], stride, padding)}};
}

std::vector<std::vector<int64_t>> DeconvShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                              int stride, int padding, bool, bool) {
  return {{x[0], w[1], deconv_side(x[2], w[2], stride, padding), deconv_side(x[3], w[3], stride, padding)}};
}

std::vector<std::vector<int64_t>> GradShapes(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                             const std::vector<int64_t>&) {
  return {x, w};
}

std::vector<paddle::DataType> OutType(const paddle::DataType& x, const paddle::DataType&) { return {x}; }

std::vector<paddle::DataType> GradTypes(const paddle::DataType& x, const paddle::DataType& w, const paddle::DataType&) {
  return {x, w};
}

#define BATCHED_CONV_OP(op, forward, backward, shape)                                  \
  PD_BUILD_OP(op)                                                                      \
      .Inputs({"X", "Weight"})                                                         \
      .Outputs({"Out"})                                                                \
      .Attrs({"stride: int", "padding: int", "weight_grad: bool", "input_grad: bool"}) \
      .SetKernelFn(PD_KERNEL(forward))                                                 \
      .SetInferShapeFn(PD_INFER_SHAPE(shape))                                          \
      .SetInferDtypeFn(PD_INFER_DTYPE(OutType));                                       \
  PD_BUILD_GRAD_OP(op)                                                                 \
      .Inputs({"X", "Weight", paddle::Grad("Out")})                                    \
      .Outputs({paddle::Grad("X"), paddle::Grad("Weight")})                            \
      .Attrs({"stride: int", "padding: int", "weight_grad: bool", "input_grad: bool"}) \
      .SetKernelFn(PD_KERNEL(backward))                                                \
      .SetInferShapeFn(PD_INFER_SHAPE(GradShapes))                                     \
      .SetInferDtypeFn(PD_INFER_DTYPE(GradTypes));

BATCHED_CONV_OP(batched_conv2d, ConvForward, ConvBackward, ConvShape)
BATCHED_CONV_OP(batched_conv2d_transpose, DeconvForward, DeconvBackward, DeconvShape)
