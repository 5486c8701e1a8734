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
import type { LoraModule } from '../model/lora.js';
import type { LayerWeights, Linear } from '../model/weights.js';
import { rotaryBackward, toHeads } from './attention.js';
import { geluBackward } from './gelu.js';
import { layernormBackward } from './layernorm.js';
import { loraBackward, loraForward, type FrozenInputGrad, type TrainTerm } from './linear.js';
import type { Rng } from './rng.js';
import type { TrainState } from './state.js';

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

/** y (T, d) <- x·Wᵀ + b, plus the LoRA term of `m` if trained (x̃ and u kept in st). */
function linear(
  st: TrainState,
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
  let xd = x;
  if (c.dropout && c.dropout.p > 0) {
    const [mask, dropped, rng] = [st.mask[m]!, st.xd[m]!, c.dropout.stream(layer, m)];
    const keep = 1 / (1 - c.dropout.p);
    for (let i = 0; i < T * n; i++) {
      mask[i] = rng.next() < c.dropout.p ? 0 : keep;
      dropped[i] = x[i] * mask[i];
    }
    xd = dropped;
  }
  loraForward(y, xd, st.u[m], term, T, c.kernels);
}

/** dx (T, n) += the gradient through `linear` of dy (T, d); the term's dA, dBᵀ accumulate. */
function linearBackward(
  st: TrainState,
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
    loraBackward(dx, dy, x, st.u[m], term, T, st.lora, c.kernels);
    return;
  }
  const [mask, dLora] = [st.mask[m]!, st.dLora];
  dLora.fill(0, 0, T * n);
  loraBackward(dLora, dy, st.xd[m]!, st.u[m], term, T, st.lora, c.kernels);
  for (let i = 0; i < T * n; i++) dx[i] += dLora[i] * mask[i];
}

/** xOut (T, D) <- block(x (T, D)), positions 0..T-1, its insides left in st. */
export function blockForward(
  st: TrainState,
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
  kernels.layernorm(st.xNorm, x, ln.weight, ln.bias, T, D, cfg.layerNormEps);
  // attention
  linear(st, st.q, st.xNorm, w.q_proj, terms.q_proj, 'q_proj', layer, T, D, D, c);
  linear(st, st.k, st.xNorm, w.k_proj, terms.k_proj, 'k_proj', layer, T, D, D, c);
  linear(st, st.v, st.xNorm, w.v_proj, terms.v_proj, 'v_proj', layer, T, D, D, c);
  kernels.rotary(st.q, T, 0, H, Dh, R, c.cos, c.sin);
  kernels.rotary(st.k, T, 0, H, Dh, R, c.cos, c.sin);
  toHeads(st.kH, st.k, T, H, Dh);
  toHeads(st.vH, st.v, T, H, Dh);
  kernels.attention(st.heads, st.q, st.kH, st.vH, T, 0, H, Dh, T, 1 / Math.sqrt(Dh), st.probs);
  linear(st, st.attnOut, st.heads, w.dense, terms.dense, 'dense', layer, T, D, D, c);
  // MLP
  linear(st, st.pre, st.xNorm, w.fc1, terms.fc1, 'fc1', layer, T, D, F, c);
  st.act.set(st.pre.subarray(0, T * F));
  kernels.gelu_new(st.act, T * F);
  linear(st, st.mlpOut, st.act, w.fc2, terms.fc2, 'fc2', layer, T, F, D, c);
  for (let i = 0; i < T * D; i++) xOut[i] = x[i] + st.attnOut[i] + st.mlpOut[i];
}

/**
 * st.dx (T, D): on entry dL/d(block output), on return dL/d(block input x). st must hold this
 * block's forward on x (blockForward just ran on it).
 */
export function blockBackward(
  st: TrainState,
  x: Float32Array,
  w: LayerWeights,
  terms: Terms,
  T: number,
  c: BlockContext,
): void {
  const { cfg } = c;
  const { hiddenSize: D, intermediateSize: F, numHeads: H, headDim: Dh } = cfg;
  const dy = st.dx; // reaches attention, the MLP and (unchanged) the block's input
  // MLP: fc2, gelu, fc1
  st.dAct.fill(0, 0, T * F);
  linearBackward(st, st.dAct, dy, st.act, w.fc2, terms.fc2, 'fc2', T, F, D, c);
  geluBackward(st.dAct, st.dAct, st.pre, T * F); // now d(pre)
  st.dxNorm.fill(0, 0, T * D);
  linearBackward(st, st.dxNorm, st.dAct, st.xNorm, w.fc1, terms.fc1, 'fc1', T, D, F, c);
  // attention: dense, softmax · v, rotary, q/k/v
  st.dHeads.fill(0, 0, T * D);
  linearBackward(st, st.dHeads, dy, st.heads, w.dense, terms.dense, 'dense', T, D, D, c);
  const scale = 1 / Math.sqrt(Dh);
  c.kernels.attention_backward(
    st.dq,
    st.dk,
    st.dv,
    st.dHeads,
    st.q,
    st.kH,
    st.vH,
    st.probs,
    T,
    H,
    Dh,
    scale,
  );
  rotaryBackward(st.dq, T, cfg, c.cos, st.negSin, c.kernels);
  rotaryBackward(st.dk, T, cfg, c.cos, st.negSin, c.kernels);
  linearBackward(st, st.dxNorm, st.dq, st.xNorm, w.q_proj, terms.q_proj, 'q_proj', T, D, D, c);
  linearBackward(st, st.dxNorm, st.dk, st.xNorm, w.k_proj, terms.k_proj, 'k_proj', T, D, D, c);
  linearBackward(st, st.dxNorm, st.dv, st.xNorm, w.v_proj, terms.v_proj, 'v_proj', T, D, D, c);
  // the shared LayerNorm; the residual's dy is already in st.dx
  layernormBackward(st.dx, st.dxNorm, x, w.input_layernorm.weight, T, D, cfg.layerNormEps);
}
