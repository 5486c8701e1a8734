// PhiForCausalLM in training: the loss of a sequence and its gradient for the LoRA terms.
//   x_0 = embed(ids);  x_{l+1} = block_l(x_l);  logits = lm_head(LN_f(x_L));  loss = CE
// and back:
//   dlogits = softmax - onehot (over N)   ->  dx_f = dlogits·W_lm   ->  dx_L = LN_f'(dx_f)
//   dx_l = block_l'(dx_{l+1})  for l = L-1 .. 0
// Each block's activations are kept from the forward when memory allows (train/plan.ts);
// otherwise only x_0 .. x_L are kept through the pass and each block's insides are
// recomputed from x_l when the backward reaches it (gradient checkpointing): one block's
// activations exist at a time, and the step costs a second forward pass.
// The embedding and every base weight are frozen: the gradient stops at x_0.
import type { Kernels } from '../kernels/types.js';
import type { PhiForCausalLM } from '../model/causal_lm.js';
import type { PhiConfig } from '../model/config.js';
import { embedding } from '../model/embedding.js';
import { badTokenId } from '../model/token_ids.js';
import type { PhiWeights } from '../model/weights.js';
import {
  blockBackward,
  blockForward,
  blockRestore,
  type BlockContext,
  type Dropout,
} from './block.js';
import { crossEntropy, NO_TARGET } from './cross_entropy.js';
import { FrozenInputGrad } from './linear.js';
import type { LoraParams } from './lora_params.js';
import { LORA_MODULES } from '../model/lora.js';
import {
  choosePlan,
  frozenGradShape,
  planTraining,
  type Checkpointing,
  type TrainPlan,
  type TrainShape,
} from './plan.js';
import { createTrainState, type TrainState } from './state.js';

export class CausalLMTrainer {
  readonly st: TrainState;
  private readonly cfg: PhiConfig;
  private readonly kernels: Kernels;
  private readonly weights: PhiWeights;
  private readonly grad: FrozenInputGrad;
  /** what the trainer holds in the kernels' memory, and whether activations are kept */
  readonly plan: TrainPlan;

  constructor(
    model: PhiForCausalLM,
    readonly params: LoraParams,
    /** longest sequence a step takes */
    readonly maxT: number,
    dropout: boolean,
    checkpointing: Checkpointing = 'auto',
  ) {
    if (maxT > model.contextLength)
      throw new Error(
        `sequences of ${maxT} tokens do not fit the model's ${model.contextLength} positions`,
      );
    this.cfg = model.config;
    this.kernels = model.kernels;
    this.weights = model.weights;
    const shape = trainShape(model, params, maxT, dropout);
    // the parameters are allocated already: what is free now is for the rest
    const free =
      this.kernels.freeBytes === undefined ? undefined : this.kernels.freeBytes + shape.paramBytes;
    this.plan = choosePlan(this.cfg, shape, checkpointing, free);
    const maxRank = Math.max(1, ...params.terms.map((t) => t.r));
    this.st = createTrainState(
      this.cfg,
      this.kernels,
      { maxT, maxRank, dropout, keep: this.plan.keep },
      model.state.ropeSin,
    );
    this.grad = new FrozenInputGrad(this.kernels, frozenGradShape(this.cfg, shape));
    this.cos = model.state.ropeCos;
    this.sin = model.state.ropeSin;
  }

  private readonly cos: Float32Array;
  private readonly sin: Float32Array;

  private context(dropout: Dropout | null): BlockContext {
    const { cfg, kernels, cos, sin, grad } = this;
    return { cfg, kernels, cos, sin, grad, dropout };
  }

  /**
   * Σ over positions with a target of -log p(target): ids (T) in, targets (T) the next token of
   * each position or NO_TARGET. With `backward`, dL/dA and dL/dB of L = that sum / N
   * accumulate into the params' gradients (N: the positions of the whole batch, so that
   * micro-batches add up to the batch's mean).
   */
  run(
    ids: readonly number[],
    targets: readonly number[],
    N: number,
    backward: boolean,
    dropout: Dropout | null = null,
  ): number {
    const { cfg, kernels, weights: w, st } = this;
    const { hiddenSize: D, vocabSize: V, numLayers: L } = cfg;
    const T = ids.length;
    if (T === 0 || T > this.maxT)
      throw new Error(`a training sequence holds 1..${this.maxT} tokens, got ${T}`);
    if (targets.length !== T) throw new Error(`${T} tokens but ${targets.length} targets`);
    const bad =
      badTokenId(ids, V) ??
      badTokenId(
        targets.filter((t) => t !== NO_TARGET),
        V,
      );
    if (bad) throw new Error(bad);
    const c = this.context(dropout);

    const acts = (l: number) => st.acts[st.keep ? l : 0];
    embedding(st.xs[0], w.embed_tokens, ids, D);
    for (let l = 0; l < L; l++)
      blockForward(
        st,
        acts(l),
        st.xs[l],
        st.xs[l + 1],
        w.layers[l],
        this.params.layers[l],
        l,
        T,
        c,
      );
    const fl = w.final_layernorm;
    kernels.layernorm(st.xf, st.xs[L], fl.weight, fl.bias, T, D, cfg.layerNormEps);
    kernels.matmul(st.logits, st.xf, w.lm_head.weight, w.lm_head.bias, T, D, V);
    const loss = crossEntropy(backward ? st.dlogits : null, st.logits, targets, T, V, N);
    if (!backward) return loss;

    st.dxf.fill(0, 0, T * D);
    this.grad.apply(st.dxf, st.dlogits, w.lm_head.weight, T, D, V);
    st.dx.fill(0, 0, T * D);
    kernels.layernorm_backward(st.dx, st.dxf, st.xs[L], fl.weight, T, D, cfg.layerNormEps);
    for (let l = L - 1; l >= 0; l--) {
      const [a, terms] = [acts(l), this.params.layers[l]];
      // the last block's forward is all still there; the others are rebuilt: its scratch from
      // the kept activations, or the whole block recomputed from its input
      if (l < L - 1 && st.keep) blockRestore(st, a, terms, l, T, c);
      else if (l < L - 1) blockForward(st, a, st.xs[l], st.xf, w.layers[l], terms, l, T, c);
      blockBackward(st, a, st.xs[l], w.layers[l], terms, T, c);
    }
    return loss;
  }
}

/** The shape train/plan.ts plans for: the terms, the longest sequence, the weights' dtypes. */
export function trainShape(
  model: PhiForCausalLM,
  params: LoraParams,
  maxT: number,
  dropout: boolean,
): TrainShape & { paramBytes: number } {
  const w = model.weights;
  const linears = [w.lm_head, ...w.layers.flatMap((l) => LORA_MODULES.map((m) => l[m]))];
  const shape = {
    maxT,
    terms: params.terms.map(({ n, d, r }) => ({ n, d, r })),
    dropout,
    dtypes: [...new Set(linears.map((l) => l.weight.dtype))],
  };
  return { ...shape, paramBytes: planTraining(model.config, shape, false).params };
}

/** A token sequence as inputs and next-token targets: ids[0..n-2] predict ids[1..n-1]. */
export function shifted(
  ids: readonly number[],
  lossFrom = 0,
): { input: number[]; targets: number[] } {
  const input = ids.slice(0, -1);
  const targets = ids.slice(1).map((id, i) => (i + 1 >= lossFrom ? id : NO_TARGET));
  return { input, targets };
}
