// One Phi block in training, forward (keeping what its backward needs) and backward.
// Forward, as model/block.ts:
//   h = LN(x);   x' = x + attn(h) + mlp(h)
// Backward, from dx' (T, D): the residual passes dx' straight through, and the same dx'
// enters both branches; their gradients meet again at the shared LayerNorm's output:
//   dh = dmlp(dx') + dattn(dx')           (MLP: fc2, gelu, fc1; attention: dense, softmax, q/k/v)
//   dx = dx' + LN'(dh)
// Every linear layer's LoRA term gets its gradients on the way (train/linear.ts).
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';
import { moduleShape, type LoraModule } from '../model/lora.js';
import type { LayerWeights, Linear } from '../model/weights.js';
import { rotaryBackward, toHeads } from './attention.js';
import { loraBackward, loraForward, type FrozenInputGrad, type TrainTerm } from './linear.js';
import type { Rng } from './rng.js';
import type { BlockActs, TrainState } from './state.js';

/** Dropout on each LoRA term's input (PEFT's lora_dropout): p, and a stream per term. */
export interface Dropout {
  p: number;
  /** the same (layer, module) gives the same stream within a step: recomputation repeats it */
  stream(layer: number, module: LoraModule): Rng;
}

/** What a block's pass needs besides its buffers. */
export interface BlockContext {
  cfg: PhiConfig;
  kernels: Kernels;
  cos: Float32Array;
  sin: Float32Array;
  grad: FrozenInputGrad;
  dropout: Dropout | null;
}

type Terms = Partial<Record<LoraModule, TrainTerm>>;

/** y (T, d) <- x·Wᵀ + b, plus the LoRA term of `m` if trained (x̃ in st, u in a). */
function linear(
  st: TrainState,
  a: BlockActs,
  y: Float32Array,
  x: Float32Array,
  lin: Linear,
  term: TrainTerm | undefined,
  m: LoraModule,
  layer: number,
  T: number,
  n: number,
  d: number,
  c: BlockContext,
): void {
  c.kernels.matmul(y, x, lin.weight, lin.bias, T, n, d);
  if (!term) return;
  loraForward(y, dropout(st, x, m, layer, T * n, c), a.u[m], term, T, c.kernels);
}

/** x̃ = dropout(x) of module m's input (T·n elements): st.xd[m], its mask in st.mask[m]. */
function dropout(
  st: TrainState,
  x: Float32Array,
  m: LoraModule,
  layer: number,
  n: number,
  c: BlockContext,
): Float32Array {
  if (!c.dropout || c.dropout.p === 0) return x;
  const [mask, dropped, rng] = [st.mask[m]!, st.xd[m]!, c.dropout.stream(layer, m)];
  const keep = 1 / (1 - c.dropout.p);
  for (let i = 0; i < n; i++) {
    mask[i] = rng.next() < c.dropout.p ? 0 : keep;
    dropped[i] = x[i] * mask[i];
  }
  return dropped;
}

/** dx (T, n) += the gradient through `linear` of dy (T, d); the term's dA, dBᵀ accumulate. */
function linearBackward(
  st: TrainState,
  a: BlockActs,
  dx: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  lin: Linear,
  term: TrainTerm | undefined,
  m: LoraModule,
  T: number,
  n: number,
  d: number,
  c: BlockContext,
): void {
  c.grad.apply(dx, dy, lin.weight, T, n, d);
  if (!term) return;
  if (!c.dropout || c.dropout.p === 0) {
    loraBackward(dx, dy, x, a.u[m], term, T, st.lora, c.kernels);
    return;
  }
  const [mask, dLora] = [st.mask[m]!, st.dLora];
  dLora.fill(0, 0, T * n);
  loraBackward(dLora, dy, st.xd[m]!, a.u[m], term, T, st.lora, c.kernels);
  for (let i = 0; i < T * n; i++) dx[i] += dLora[i] * mask[i];
}

/** xOut (T, D) <- block(x (T, D)), positions 0..T-1, its insides left in a and st. */
export function blockForward(
  st: TrainState,
  a: BlockActs,
  x: Float32Array,
  xOut: Float32Array,
  w: LayerWeights,
  terms: Terms,
  layer: number,
  T: number,
  c: BlockContext,
): void {
  const { cfg, kernels } = c;
  const { hiddenSize: D, intermediateSize: F, numHeads: H, headDim: Dh, rotaryDim: R } = cfg;
  const ln = w.input_layernorm;
  kernels.layernorm(a.xNorm, x, ln.weight, ln.bias, T, D, cfg.layerNormEps);
  // attention
  const lin = (y: Float32Array, x: Float32Array, m: LoraModule, n: number, d: number) =>
    linear(st, a, y, x, w[m], terms[m], m, layer, T, n, d, c);
  lin(a.q, a.xNorm, 'q_proj', D, D);
  lin(st.k, a.xNorm, 'k_proj', D, D);
  lin(st.v, a.xNorm, 'v_proj', D, D);
  kernels.rotary(a.q, T, 0, H, Dh, R, c.cos, c.sin);
  kernels.rotary(st.k, T, 0, H, Dh, R, c.cos, c.sin);
  toHeads(a.kH, st.k, T, H, Dh);
  toHeads(a.vH, st.v, T, H, Dh);
  kernels.attention(a.heads, a.q, a.kH, a.vH, T, 0, H, Dh, T, 1 / Math.sqrt(Dh), st.probs);
  lin(st.attnOut, a.heads, 'dense', D, D);
  // MLP
  lin(a.pre, a.xNorm, 'fc1', D, F);
  st.act.set(a.pre.subarray(0, T * F));
  kernels.gelu_new(st.act, T * F);
  lin(st.mlpOut, st.act, 'fc2', F, D);
  for (let i = 0; i < T * D; i++) xOut[i] = x[i] + st.attnOut[i] + st.mlpOut[i];
}

/**
 * With kept activations (a from this block's own forward, st since overwritten by later
 * blocks): rebuild in st what the backward reads besides a, exactly as the forward made it.
 * The softmax comes from attention run again on the kept q, k, v (its output, the same as
 * a.heads, goes to scratch); gelu's output from fc1's; dropout's masks from their streams.
 */
export function blockRestore(
  st: TrainState,
  a: BlockActs,
  terms: Terms,
  layer: number,
  T: number,
  c: BlockContext,
): void {
  const { cfg, kernels } = c;
  const { intermediateSize: F, numHeads: H, headDim: Dh } = cfg;
  kernels.attention(st.attnOut, a.q, a.kH, a.vH, T, 0, H, Dh, T, 1 / Math.sqrt(Dh), st.probs);
  st.act.set(a.pre.subarray(0, T * F));
  kernels.gelu_new(st.act, T * F);
  for (const m of Object.keys(terms) as LoraModule[]) {
    if (!terms[m]) continue;
    const x = m === 'dense' ? a.heads : m === 'fc2' ? st.act : a.xNorm; // as blockForward wires it
    dropout(st, x, m, layer, T * moduleShape(cfg, m)[0], c);
  }
}

/**
 * st.dx (T, D): on entry dL/d(block output), on return dL/d(block input x). a and st must
 * hold this block's forward on x (blockForward just ran on it, or blockRestore after it).
 */
export function blockBackward(
  st: TrainState,
  a: BlockActs,
  x: Float32Array,
  w: LayerWeights,
  terms: Terms,
  T: number,
  c: BlockContext,
): void {
  const { cfg } = c;
  const { hiddenSize: D, intermediateSize: F, numHeads: H, headDim: Dh } = cfg;
  const dy = st.dx; // reaches attention, the MLP and (unchanged) the block's input
  const back = (
    dx: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    m: LoraModule,
    n: number,
    d: number,
  ) => linearBackward(st, a, dx, dy, x, w[m], terms[m], m, T, n, d, c);
  // MLP: fc2, gelu, fc1
  st.dAct.fill(0, 0, T * F);
  back(st.dAct, dy, st.act, 'fc2', F, D);
  c.kernels.gelu_backward(st.dAct, st.dAct, a.pre, T * F); // now d(pre) (train/gelu.ts)
  st.dxNorm.fill(0, 0, T * D);
  back(st.dxNorm, st.dAct, a.xNorm, 'fc1', D, F);
  // attention: dense, softmax · v, rotary, q/k/v
  st.dHeads.fill(0, 0, T * D);
  back(st.dHeads, dy, a.heads, 'dense', D, D);
  const scale = 1 / Math.sqrt(Dh);
  c.kernels.attention_backward(
    st.dq,
    st.dk,
    st.dv,
    st.dHeads,
    a.q,
    a.kH,
    a.vH,
    st.probs,
    T,
    H,
    Dh,
    scale,
  );
  rotaryBackward(st.dq, T, cfg, c.cos, st.negSin, c.kernels);
  rotaryBackward(st.dk, T, cfg, c.cos, st.negSin, c.kernels);
  back(st.dxNorm, st.dq, a.xNorm, 'q_proj', D, D);
  back(st.dxNorm, st.dk, a.xNorm, 'k_proj', D, D);
  back(st.dxNorm, st.dv, a.xNorm, 'v_proj', D, D);
  // the shared LayerNorm; the residual's dy is already in st.dx
  const ln = w.input_layernorm.weight;
  c.kernels.layernorm_backward(st.dx, st.dxNorm, x, ln, T, D, cfg.layerNormEps); // train/layernorm.ts
}
