// LayerNorm backward, the weight and bias frozen (only the input's gradient is needed):
//   y  = x̂ · w + b,   x̂ = (x - μ) · ρ,   ρ = 1 / √(σ² + ε)         per row of D
//   dx̂ = dy · w
//   dx = ρ · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂))
// (x̂'s rows have mean 0 and mean square 1 whatever x is: the two means remove the parts of
// dx̂ along those constraints). μ and ρ are recomputed from x (two passes, as the forward
// kernel does): cheaper to redo than to keep for every row of every layer.
// That is Kernels.layernorm_backward (the twin: src/kernels/ref/layernorm.ts, beside the
// forward; wasm: assembly/layernorm.ts).
export { layernorm_backward as layernormBackward } from '../kernels/ref/layernorm.js';
